using System.Buffers;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

public sealed class WalFrameReaderTests
{
    private static readonly byte[] s_payload = MessageBuilder.Insert();
    private static readonly byte[] s_frame = FrameStream.Build([(Lsn.Parse("1/2"), Lsn.Parse("3/4"), s_payload)]);

    public static TheoryData<int> IncompleteLengths => [.. Enumerable.Range(0, s_frame.Length)];

    [Theory]
    [MemberData(nameof(IncompleteLengths))]
    public void Incomplete_frame_needs_more_and_consumes_nothing(int length)
    {
        using var reader = new WalFrameReader();
        var buffer = FrameStream.Segmented(s_frame.AsSpan(0, length).ToArray(), length > 3 ? [length / 2] : []);
        var before = buffer;

        Assert.False(reader.TryRead(ref buffer, out _));
        Assert.Equal(before.Length, buffer.Length);
        Assert.Equal(before.Start, buffer.Start);
    }

    [Fact]
    public void Frame_split_across_segments_is_read_whole()
    {
        using var reader = new WalFrameReader();
        var twice = s_frame.Concat(s_frame).ToArray();
        var buffer = FrameStream.Segmented(twice, [5, WalFrame.HeaderLength + 3, s_frame.Length + 1]);

        Assert.True(reader.TryRead(ref buffer, out var first));
        Assert.Equal(s_payload, first.Payload.ToArray());
        Assert.Equal(Lsn.Parse("1/2"), first.WalStart);
        Assert.Equal(Lsn.Parse("3/4"), first.WalEnd);
        Assert.True(reader.TryRead(ref buffer, out var second));
        Assert.Equal(s_payload, second.Payload.ToArray());
        Assert.True(buffer.IsEmpty);
        Assert.False(reader.TryRead(ref buffer, out _));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(1025)]
    public void Impossible_payload_length_is_a_protocol_error(int length)
    {
        using var reader = new WalFrameReader(maxPayloadLength: 1024);
        var header = new byte[WalFrame.HeaderLength];
        WalFrame.WriteHeader(header, length, Lsn.Invalid, Lsn.Invalid);
        var buffer = new ReadOnlySequence<byte>(header);

        var error = Assert.Throws<PgOutputProtocolException>(() => reader.TryRead(ref buffer, out _));

        Assert.Contains($"declares a payload of {length} bytes", error.Reason, StringComparison.Ordinal);
    }
}
