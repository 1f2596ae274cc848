using System.Buffers;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// Every checked-in fixture decodes to its expected dump, and to the same messages however the
/// bytes are cut into segments.
/// </summary>
public sealed class PgOutputParserGoldenTests
{
    public static TheoryData<string> Fixtures => [.. GoldenFixture.Names];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_decodes_to_its_expected_dump(string name)
    {
        var fixture = GoldenFixture.Load(name);

        Assert.Equal(fixture.ExpectedDump, MessageDump.Render(fixture.Stream, fixture.Options));
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_decodes_identically_split_at_every_index(string name)
    {
        var fixture = GoldenFixture.Load(name);
        var whole = Digest(new ReadOnlySequence<byte>(fixture.Stream), fixture.Options);

        var wrongCuts = new System.Collections.Concurrent.ConcurrentBag<int>();
        Parallel.For(1, fixture.Stream.Length, cut =>
        {
            if (Digest(FrameStream.Segmented(fixture.Stream, [cut]), fixture.Options) != whole)
                wrongCuts.Add(cut);
        });

        Assert.True(wrongCuts.IsEmpty, $"Split at bytes {string.Join(", ", wrongCuts.Order().Take(10))} decoded differently.");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_decodes_identically_one_byte_per_segment(string name)
    {
        var fixture = GoldenFixture.Load(name);
        var whole = Digest(new ReadOnlySequence<byte>(fixture.Stream), fixture.Options);

        var cuts = Enumerable.Range(1, fixture.Stream.Length - 1).ToArray();

        Assert.Equal(whole, Digest(FrameStream.Segmented(fixture.Stream, cuts), fixture.Options));
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Every_message_truncated_at_every_byte_is_a_protocol_error(string name)
    {
        var fixture = GoldenFixture.Load(name);
        var parser = new PgOutputParser(fixture.Options);
        var handler = new DigestHandler();

        foreach (var (start, _, payload) in FrameStream.Split(fixture.Stream))
        {
            for (var length = 0; length < payload.Length; length++)
            {
                var error = Assert.Throws<PgOutputProtocolException>(() =>
                {
                    var h = new DigestHandler();
                    parser.Parse(payload.AsSpan(0, length), start, ref h);
                });
                Assert.Equal(start, error.Lsn);
                Assert.InRange(error.Offset, 0, length);
            }
            parser.Parse(payload, start, ref handler);
        }
    }

    [Fact]
    public void Fixtures_cover_every_message_kind_and_value_kind()
    {
        var dumps = string.Concat(GoldenFixture.Names.Select(n => GoldenFixture.Load(n).ExpectedDump));

        string[] expected =
        [
            "\nBegin ", "\nCommit ", "\nOrigin ", "\nRelation ", "\nType ", "\nInsert ", "\nUpdate ", "\nDelete ", "\nTruncate ",
            "\nMessage ", "\nStreamStart ", "\nStreamStop ", "\nStreamCommit ", "\nStreamAbort ", "\nBeginPrepare ", "\nPrepare ",
            "\nCommitPrepared ", "\nRollbackPrepared ", "\nStreamPrepare ",
            " key=[", " old=[", "unchanged-toast", "null", "t:", "b:\\x", "subxid=xid=", "subxid=same",
            "options=Cascade, RestartIdentity", "transactional=False", "transactional=True", "identity=f", "identity=i",
        ];
        foreach (var fragment in expected)
            Assert.Contains(fragment, dumps, StringComparison.Ordinal);
    }

    private static int Digest(ReadOnlySequence<byte> buffer, PgOutputOptions options)
    {
        var parser = new PgOutputParser(options);
        var handler = new DigestHandler();
        using var frames = new WalFrameReader();
        while (frames.TryRead(ref buffer, out var frame))
            parser.Parse(frame.Payload, frame.WalStart, ref handler);
        Assert.True(buffer.IsEmpty, $"{buffer.Length} bytes were left unread");
        return handler.Digest;
    }
}
