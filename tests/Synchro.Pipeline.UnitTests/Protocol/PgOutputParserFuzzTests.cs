using System.Buffers.Binary;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// A bounded, seeded mutation fuzzer over the golden corpus: whatever the bytes, the parser and the
/// frame reader only ever return a message or throw <see cref="PgOutputProtocolException"/>.
/// </summary>
/// <remarks>
/// Seeds are fixed: a stable hash (FNV-1a) of the case's name and the mutation's number, never
/// <see cref="string.GetHashCode()"/>, which differs per process. A failure prints the seed and the input
/// bytes in hex, so it can be replayed with <c>new Random(seed)</c> or from the bytes alone.
/// </remarks>
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

        for (var i = 0; i < MutationsPerFixture; i++)
        {
            // One seed per mutation: a failure replays alone.
            var seed = Seed(name, i);
            var random = new Random(seed);
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
                Assert.Fail($"{name}, mutation {i} (seed {seed}): {e.GetType().Name} instead of a protocol error for frame {target} mutated to {Convert.ToHexString(mutated)}: {e}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Mutated_frame_streams_read_or_raise_the_protocol_exception(string name)
    {
        var fixture = GoldenFixture.Load(name);

        for (var i = 0; i < 200; i++)
        {
            var seed = Seed("stream " + name, i);
            var random = new Random(seed);
            var mutated = Mutate(fixture.Stream, random);
            // A mutation may leave nothing: no cut past the end.
            int[] splits = [.. Enumerable.Range(0, 3).Select(_ => random.Next(1, Math.Max(2, mutated.Length))).Where(cut => cut <= mutated.Length).Distinct().Order()];
            var buffer = FrameStream.Segmented(mutated, splits);
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
                Assert.Fail($"{name}, stream mutation {i} (seed {seed}): {e.GetType().Name} instead of a protocol error for the stream {Convert.ToHexString(mutated)} split at [{string.Join(", ", splits)}]: {e}");
            }
        }
    }

    [Fact]
    public void Random_bytes_parse_or_raise_the_protocol_exception()
    {
        var kinds = "BCORYIUDTMSEcAbPKrp"u8.ToArray();
        var options = new PgOutputOptions(4, PgOutputStreaming.Parallel, twoPhase: true, binary: true, messages: true);
        for (var i = 0; i < 50_000; i++)
        {
            var seed = Seed("random bytes", i);
            var random = new Random(seed);
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
            catch (Exception e)
            {
                Assert.Fail($"random bytes {i} (seed {seed}): {e.GetType().Name} instead of a protocol error for {Convert.ToHexString(bytes)} after {Convert.ToHexString(relation)}: {e}");
            }
        }
    }

    /// <summary>FNV-1a (32-bit) of <paramref name="name"/>'s UTF-8 bytes, then of <paramref name="index"/>'s four bytes: the same in every process.</summary>
    private static int Seed(string name, int index)
    {
        var hash = 2166136261u;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(name))
            hash = (hash ^ b) * 16777619u;
        for (var shift = 0; shift < 32; shift += 8)
            hash = (hash ^ (byte)(index >> shift)) * 16777619u;
        return unchecked((int)hash);
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
