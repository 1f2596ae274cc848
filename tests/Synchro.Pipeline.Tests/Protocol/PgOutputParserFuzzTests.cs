using System.Buffers.Binary;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// A bounded, seeded mutation fuzzer over the golden corpus: whatever the bytes, the parser and the
/// frame reader only ever return a message or throw <see cref="PgOutputProtocolException"/>.
/// </summary>
public sealed class PgOutputParserFuzzTests
{
    // Enough to hit every mutation of every message kind many times, in a few seconds.
    private const int MutationsPerFixture = 20_000;

    private static readonly int[] s_interestingInt32s = [0, 1, -1, 2, 255, 65535, int.MaxValue, int.MinValue, 1 << 30, 0x7FFF];

    public static TheoryData<string> Fixtures => [.. GoldenFixture.Names];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Mutated_messages_parse_or_raise_the_protocol_exception(string name)
    {
        var fixture = GoldenFixture.Load(name);
        var frames = FrameStream.Split(fixture.Stream);
        var random = new Random(name.GetHashCode(StringComparison.Ordinal) ^ 0x5EED);

        for (var i = 0; i < MutationsPerFixture; i++)
        {
            // State before a message matters (relations, stream block): replay a prefix first.
            var target = random.Next(frames.Count);
            var parser = new PgOutputParser(fixture.Options);
            var handler = new DigestHandler();
            for (var f = Math.Max(0, target - 8); f < target; f++)
                TryParse(parser, frames[f].Payload, ref handler);
            foreach (var relation in frames.Where(f => f.Payload[0] == (byte)'R').Take(4))
                TryParse(parser, relation.Payload, ref handler);

            var mutated = Mutate(frames[target].Payload, random);
            try
            {
                parser.Parse(mutated, frames[target].Start, ref handler);
            }
            catch (PgOutputProtocolException)
            {
            }
            catch (Exception e)
            {
                Assert.Fail($"{name}, mutation {i}: {e.GetType().Name} instead of a protocol error for {Convert.ToHexString(mutated)}: {e}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Mutated_frame_streams_read_or_raise_the_protocol_exception(string name)
    {
        var fixture = GoldenFixture.Load(name);
        var random = new Random(name.Length ^ 0xF4A3E);

        for (var i = 0; i < 200; i++)
        {
            var mutated = Mutate(fixture.Stream, random);
            var buffer = FrameStream.Segmented(mutated, [.. Enumerable.Range(0, 3).Select(_ => random.Next(1, Math.Max(2, mutated.Length))).Distinct().Order()]);
            var parser = new PgOutputParser(fixture.Options);
            var handler = new DigestHandler();
            using var reader = new WalFrameReader(maxPayloadLength: 1 << 20);
            try
            {
                while (reader.TryRead(ref buffer, out var frame))
                    parser.Parse(frame.Payload, frame.WalStart, ref handler);
            }
            catch (PgOutputProtocolException)
            {
            }
            catch (Exception e)
            {
                Assert.Fail($"{name}, stream mutation {i}: {e.GetType().Name} instead of a protocol error: {e}");
            }
        }
    }

    [Fact]
    public void Random_bytes_parse_or_raise_the_protocol_exception()
    {
        var random = new Random(20261124);
        var kinds = "BCORYIUDTMSEcAbPKrp"u8.ToArray();
        var options = new PgOutputOptions(4, PgOutputStreaming.Parallel, twoPhase: true, binary: true, messages: true);
        for (var i = 0; i < 50_000; i++)
        {
            var parser = new PgOutputParser(options);
            var relation = MessageBuilder.Relation();
            var handler = new DigestHandler();
            parser.Parse(relation, Lsn.Invalid, ref handler);
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            if (bytes.Length > 0)
                bytes[0] = kinds[random.Next(kinds.Length)];
            if (bytes.Length > 5 && random.Next(2) == 0)
                BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(1), 16384);
            try
            {
                parser.Parse(bytes, Lsn.Invalid, ref handler);
            }
            catch (PgOutputProtocolException)
            {
            }
        }
    }

    private static void TryParse(PgOutputParser parser, byte[] payload, ref DigestHandler handler)
    {
        try
        {
            parser.Parse(payload, Lsn.Invalid, ref handler);
        }
        catch (PgOutputProtocolException)
        {
        }
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = original.ToList();
        var mutations = random.Next(1, 4);
        for (var m = 0; m < mutations && bytes.Count > 0; m++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(7))
            {
                case 0: // bit flip
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1: // random byte
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2: // truncation
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 3: // insertion
                    bytes.InsertRange(at, Enumerable.Range(0, random.Next(1, 9)).Select(_ => (byte)random.Next(256)));
                    break;
                case 4: // deletion
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 9)));
                    break;
                case 5: // length or count corruption with an interesting value
                    if (at + 4 <= bytes.Count)
                    {
                        var value = new byte[4];
                        BinaryPrimitives.WriteInt32BigEndian(value, s_interestingInt32s[random.Next(s_interestingInt32s.Length)]);
                        for (var k = 0; k < 4; k++)
                            bytes[at + k] = value[k];
                    }
                    break;
                default: // 16-bit count corruption
                    if (at + 2 <= bytes.Count)
                    {
                        var value = (short)s_interestingInt32s[random.Next(s_interestingInt32s.Length)];
                        bytes[at] = (byte)(value >> 8);
                        bytes[at + 1] = (byte)value;
                    }
                    break;
            }
        }
        return [.. bytes];
    }
}
