using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>Inputs no server sends: each is a <see cref="PgOutputProtocolException"/> naming the kind and offset.</summary>
public sealed class PgOutputParserMalformedTests
{
    private static readonly Lsn s_lsn = Lsn.Parse("16/B374D848");

    public static TheoryData<string, byte[], char, int, string> Cases => new()
    {
        { "empty payload", [], '\0', 0, "message is truncated: 1 more byte(s) needed, 0 left" },
        { "unknown kind", new MessageBuilder('Z').Build(), 'Z', 0, "unknown message kind 0x5A" },
        { "row for unknown relation", MessageBuilder.Insert(oid: 99999), 'I', 1, "relation OID 99999, which no Relation message has described" },
        { "insert without N marker", new MessageBuilder('I').Int32(16384).Char('X').Int16(2).Build(), 'I', 5, "expected tuple marker 'N'" },
        { "tuple with too few columns", new MessageBuilder('I').Int32(16384).Char('N').Int16(1).Text("1").Build(), 'I', 6, "tuple has 1 columns but relation public.t" },
        { "tuple with negative column count", new MessageBuilder('I').Int32(16384).Char('N').Int16(-1).Build(), 'I', 6, "tuple has -1 columns" },
        { "unknown value kind", new MessageBuilder('I').Int32(16384).Char('N').Int16(2).Text("1").Char('x').Build(), 'I', 14, "column 2 of 2 has unknown value kind 0x78" },
        { "negative value length", new MessageBuilder('I').Int32(16384).Char('N').Int16(2).Text("1").Char('t').Int32(-5).Build(), 'I', 15, "column 2 value length -5 is negative" },
        { "value length past the end", new MessageBuilder('I').Int32(16384).Char('N').Int16(2).Text("1").Char('t').Int32(1_000_000).Raw(1, 2).Build(), 'I', 15, "column 2 value length 1000000 is larger than the 2 bytes left" },
        { "trailing bytes after insert", new MessageBuilder('I').Int32(16384).Char('N').Int16(2).Text("1").Text("u").Byte(0).Build(), 'I', 20, "1 unexpected trailing bytes" },
        { "update with bad marker", new MessageBuilder('U').Int32(16384).Char('Q').Build(), 'U', 5, "expected tuple marker 'K', 'O' or 'N', found 0x51" },
        { "delete without old row", new MessageBuilder('D').Int32(16384).Char('N').Int16(2).Text("1").Text("u").Build(), 'D', 5, "expected old tuple marker 'K' or 'O'" },
        { "relation with negative column count", new MessageBuilder('R').Int32(1).CString("s").CString("t").Char('d').Int16(-3).Build(), 'R', 10, "column count -3 is impossible" },
        { "relation with absurd column count", new MessageBuilder('R').Int32(1).CString("s").CString("t").Char('d').Int16(30000).Build(), 'R', 10, "column count 30000 is impossible with 0 bytes left" },
        { "relation with unknown replica identity", new MessageBuilder('R').Int32(1).CString("s").CString("t").Char('z').Int16(0).Build(), 'R', 9, "unknown replica identity 0x7A" },
        { "relation name without terminator", new MessageBuilder('R').Int32(1).Raw((byte)'s', (byte)'c').Build(), 'R', 5, "has no NUL terminator" },
        { "relation name not UTF-8", new MessageBuilder('R').Int32(1).Raw(0xC3, 0x28, 0).CString("t").Char('d').Int16(0).Build(), 'R', 5, "schema name is not valid UTF-8" },
        { "relation column with unknown flags", new MessageBuilder('R').Int32(1).CString("s").CString("t").Char('d').Int16(1).Byte(7).CString("c").Int32(23).Int32(-1).Build(), 'R', 12, "column 1 has unknown flags 0x07" },
        { "truncate of zero relations", new MessageBuilder('T').Int32(0).Byte(0).Build(), 'T', 1, "relation count 0" },
        { "truncate count larger than its OIDs", new MessageBuilder('T').Int32(3).Byte(0).Int32(16384).Build(), 'T', 1, "relation count 3 does not match the 4 bytes" },
        { "truncate of an unknown relation", new MessageBuilder('T').Int32(2).Byte(1).Int32(16384).Int32(777).Build(), 'T', 10, "relation OID 777 was never described" },
        { "truncate with unknown options", new MessageBuilder('T').Int32(1).Byte(8).Int32(16384).Build(), 'T', 5, "unknown truncate options 0x08" },
        { "commit with trailing bytes", new MessageBuilder('C').Byte(0).Int64(1).Int64(2).Int64(3).Byte(9).Build(), 'C', 26, "1 unexpected trailing bytes" },
        { "truncated commit", new MessageBuilder('C').Byte(0).Int64(1).Build(), 'C', 10, "message is truncated: 8 more byte(s) needed, 0 left" },
        { "message with negative content length", new MessageBuilder('M').Byte(1).Int64(5).CString("p").Int32(-1).Build(), 'M', 12, "message content length -1 is negative" },
        { "message with unknown flags", new MessageBuilder('M').Byte(4).Build(), 'M', 1, "unknown message flags 0x04" },
        { "stream message without streaming", new MessageBuilder('S').Int32(5).Byte(1).Build(), 'S', 0, "streaming message, but the stream was started without streaming" },
        { "two-phase message without two_phase", new MessageBuilder('K').Build(), 'K', 0, "two-phase message, but the stream was started without two_phase" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_message_is_a_protocol_error(string description, byte[] message, char kind, int offset, string reason)
    {
        var parser = ParserWithRelation(new PgOutputOptions(1));

        var error = ParseExpectingError(parser, message);

        Assert.True(error.MessageKind == (byte)kind, $"{description}: kind {(char)error.MessageKind}");
        Assert.True(error.Offset == offset, $"{description}: offset {error.Offset}, expected {offset} ({error.Message})");
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
        Assert.Equal(s_lsn, error.Lsn);
        Assert.Contains("at LSN 16/B374D848", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Stream_stop_without_stream_start_is_a_protocol_error()
    {
        var parser = new PgOutputParser(new PgOutputOptions(2, PgOutputStreaming.On));

        var error = ParseExpectingError(parser, new MessageBuilder('E').Build());

        Assert.Contains("Stream Stop without a preceding Stream Start", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Begin_inside_a_stream_block_is_a_protocol_error()
    {
        var parser = new PgOutputParser(new PgOutputOptions(2, PgOutputStreaming.On));
        Parse(parser, new MessageBuilder('S').Int32(700).Byte(1).Build());

        var error = ParseExpectingError(parser, new MessageBuilder('B').Int64(1).Int64(2).Int32(3).Build());

        Assert.Contains("not allowed inside the stream block of transaction 700", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Rows_inside_a_stream_block_carry_their_transaction_id()
    {
        var parser = new PgOutputParser(new PgOutputOptions(2, PgOutputStreaming.On));
        Parse(parser, new MessageBuilder('S').Int32(700).Byte(1).Build());
        Parse(parser, [(byte)'R', .. new MessageBuilder('x').Int32(701).Build()[1..], .. MessageBuilder.Relation()[1..]]);

        var line = MessageDump.RenderOne(parser, [(byte)'I', .. new MessageBuilder('x').Int32(701).Build()[1..], .. MessageBuilder.Insert()[1..]], s_lsn);

        Assert.Equal("Insert lsn=16/B374D848 xid=701 public.t new=[t:\"1\", t:\"u1\"]\n", line);
        Assert.Equal(700u, parser.StreamXid);
    }

    [Theory]
    [InlineData(4, true, true)]
    [InlineData(4, false, false)]
    [InlineData(2, false, false)]
    public void Stream_abort_carries_abort_lsn_and_time_only_with_protocol_4_parallel_streaming(int version, bool parallel, bool hasAbortInfo)
    {
        var parser = new PgOutputParser(new PgOutputOptions(version, parallel ? PgOutputStreaming.Parallel : PgOutputStreaming.On));
        var withInfo = new MessageBuilder('A').Int32(700).Int32(701).Int64(0x16_B374D848).Int64(817_000_000_000_000).Build();
        var withoutInfo = new MessageBuilder('A').Int32(700).Int32(701).Build();

        var line = MessageDump.RenderOne(parser, hasAbortInfo ? withInfo : withoutInfo, s_lsn);
        var error = ParseExpectingError(parser, hasAbortInfo ? withoutInfo : withInfo);

        var expected = "StreamAbort lsn=16/B374D848 xid=700 subxid=xid=701"
            + (hasAbortInfo ? $" abort=lsn=16/B374D848 time={PgTimestamp.ToDateTime(817_000_000_000_000):O}" : "") + "\n";
        Assert.Equal(expected, line);
        Assert.Equal((byte)'A', error.MessageKind);
        Assert.Contains(hasAbortInfo ? "truncated" : "unexpected trailing bytes", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_new_relation_message_replaces_the_cached_relation()
    {
        var parser = ParserWithRelation(new PgOutputOptions(1));
        var renamed = new MessageBuilder('R').Int32(16384).CString("public").CString("t").Char('f').Int16(3)
            .Byte(1).CString("id").Int32(23).Int32(-1)
            .Byte(0).CString("owner_id").Int32(25).Int32(-1)
            .Byte(0).CString("added").Int32(16).Int32(-1)
            .Build();

        Parse(parser, renamed);

        Assert.True(parser.Relations.TryGet(16384, out var relation));
        Assert.Equal(ReplicaIdentity.Full, relation.ReplicaIdentity);
        Assert.Equal(["id", "owner_id", "added"], relation.Columns.Select(c => c.Name));
        Assert.Throws<PgOutputProtocolException>(() => Parse(parser, MessageBuilder.Insert()));
    }

    private static PgOutputParser ParserWithRelation(PgOutputOptions options)
    {
        var parser = new PgOutputParser(options);
        Parse(parser, MessageBuilder.Relation());
        return parser;
    }

    private static void Parse(PgOutputParser parser, byte[] message)
    {
        var handler = new DigestHandler();
        parser.Parse(message, s_lsn, ref handler);
    }

    private static PgOutputProtocolException ParseExpectingError(PgOutputParser parser, byte[] message)
        => Assert.Throws<PgOutputProtocolException>(() => Parse(parser, message));
}
