using System.Globalization;
using System.Text;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// Renders every parsed message as one line of text, every field included, so a golden fixture's
/// decoded meaning can be checked in and compared.
/// </summary>
internal sealed class MessageDump : IPgOutputHandler
{
    private readonly StringBuilder _text = new();
    private Lsn _lsn;

    public override string ToString() => _text.ToString();

    /// <summary>Parses every frame of <paramref name="stream"/> and returns the dump.</summary>
    public static string Render(byte[] stream, PgOutputOptions options)
    {
        var dump = new MessageDump();
        var parser = new PgOutputParser(options);
        dump._text.Append("# ").Append(Describe(options)).Append('\n');
        foreach (var (start, _, payload) in FrameStream.Split(stream))
        {
            dump._lsn = start;
            parser.Parse(payload, start, ref dump);
        }
        return dump.ToString();
    }

    /// <summary>Parses one message with <paramref name="parser"/> and returns its line.</summary>
    public static string RenderOne(PgOutputParser parser, byte[] message, Lsn lsn)
    {
        var dump = new MessageDump { _lsn = lsn };
        parser.Parse(message, lsn, ref dump);
        return dump.ToString();
    }

    public static string Describe(PgOutputOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"proto_version={o.ProtocolVersion} streaming={o.Streaming.ToString().ToLowerInvariant()} two_phase={(o.TwoPhase ? "on" : "off")} binary={(o.Binary ? "on" : "off")} messages={(o.Messages ? "on" : "off")}");

    private StringBuilder Line(string kind) => _text.Append(CultureInfo.InvariantCulture, $"{kind} lsn={_lsn}");

    public void OnBegin(in BeginMessage m) => Line("Begin").Append(CultureInfo.InvariantCulture, $" final=lsn={m.FinalLsn} time={Time(m.CommitTimestamp)} xid={m.Xid}\n");

    public void OnCommit(in CommitMessage m) => Line("Commit").Append(CultureInfo.InvariantCulture, $" flags={m.Flags} commit=lsn={m.CommitLsn} end=lsn={m.EndLsn} time={Time(m.CommitTimestamp)}\n");

    public void OnOrigin(in OriginMessage m) => Line("Origin").Append(CultureInfo.InvariantCulture, $" origin_commit=lsn={m.OriginCommitLsn} name={Text(m.Name)}\n");

    public void OnRelation(in RelationMessage m)
    {
        var r = m.Relation;
        Line("Relation").Append(CultureInfo.InvariantCulture, $"{Xid(m.Xid)} oid={r.Oid} {r.Schema}.{r.Name} identity={(char)r.ReplicaIdentity} columns=[");
        for (var i = 0; i < r.Columns.Length; i++)
        {
            var c = r.Columns[i];
            _text.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"{c.Name}:typeoid={c.TypeOid}:{c.TypeModifier}{(c.IsKey ? ":key" : "")}");
        }
        _text.Append("]\n");
    }

    public void OnType(in TypeMessage m) => Line("Type").Append(CultureInfo.InvariantCulture, $"{Xid(m.Xid)} typeoid={m.TypeOid} {Text(m.Schema)}.{Text(m.Name)}\n");

    public void OnInsert(in InsertMessage m)
    {
        Line("Insert").Append(CultureInfo.InvariantCulture, $"{Xid(m.Xid)} {m.Relation} new=");
        Tuple(m.NewRow);
        _text.Append('\n');
    }

    public void OnUpdate(in UpdateMessage m)
    {
        Line("Update").Append(CultureInfo.InvariantCulture, $"{Xid(m.Xid)} {m.Relation}");
        if (m.OldRowKind != OldTupleKind.None)
        {
            _text.Append(m.OldRowKind == OldTupleKind.Key ? " key=" : " old=");
            Tuple(m.OldRow);
        }
        _text.Append(" new=");
        Tuple(m.NewRow);
        _text.Append('\n');
    }

    public void OnDelete(in DeleteMessage m)
    {
        Line("Delete").Append(CultureInfo.InvariantCulture, $"{Xid(m.Xid)} {m.Relation}").Append(m.OldRowKind == OldTupleKind.Key ? " key=" : " old=");
        Tuple(m.OldRow);
        _text.Append('\n');
    }

    public void OnTruncate(in TruncateMessage m)
    {
        Line("Truncate").Append(CultureInfo.InvariantCulture, $"{Xid(m.Xid)} options={m.Options} relations=[");
        for (var i = 0; i < m.RelationCount; i++)
            _text.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"oid={m.RelationOid(i)} {m.Relation(i)}");
        _text.Append("]\n");
    }

    public void OnMessage(in LogicalDecodingMessage m)
        => Line("Message").Append(CultureInfo.InvariantCulture, $"{Xid(m.Xid)} transactional={m.Transactional} message=lsn={m.Lsn} prefix={Text(m.Prefix)} content={Hex(m.Content)}\n");

    public void OnStreamStart(in StreamStartMessage m) => Line("StreamStart").Append(CultureInfo.InvariantCulture, $" xid={m.Xid} first={m.IsFirstSegment}\n");

    public void OnStreamStop() => Line("StreamStop").Append('\n');

    public void OnStreamCommit(in CommitMessage m)
        => Line("StreamCommit").Append(CultureInfo.InvariantCulture, $" xid={m.Xid} flags={m.Flags} commit=lsn={m.CommitLsn} end=lsn={m.EndLsn} time={Time(m.CommitTimestamp)}\n");

    public void OnStreamAbort(in StreamAbortMessage m)
    {
        Line("StreamAbort").Append(CultureInfo.InvariantCulture, $" xid={m.Xid} subxid={(m.IsWholeTransaction ? "same" : $"xid={m.SubXid}")}");
        if (m.AbortLsn.IsValid)
            _text.Append(CultureInfo.InvariantCulture, $" abort=lsn={m.AbortLsn} time={Time(m.AbortTimestamp)}");
        _text.Append('\n');
    }

    public void OnBeginPrepare(in PrepareMessage m) => Prepare("BeginPrepare", m);

    public void OnPrepare(in PrepareMessage m) => Prepare("Prepare", m);

    public void OnStreamPrepare(in PrepareMessage m) => Prepare("StreamPrepare", m);

    public void OnCommitPrepared(in CommitPreparedMessage m)
        => Line("CommitPrepared").Append(CultureInfo.InvariantCulture, $" flags={m.Flags} commit=lsn={m.CommitLsn} end=lsn={m.EndLsn} time={Time(m.CommitTimestamp)} xid={m.Xid} gid={Text(m.Gid)}\n");

    public void OnRollbackPrepared(in RollbackPreparedMessage m)
        => Line("RollbackPrepared").Append(CultureInfo.InvariantCulture,
            $" flags={m.Flags} prepare_end=lsn={m.PrepareEndLsn} rollback_end=lsn={m.RollbackEndLsn} prepare_time={Time(m.PrepareTimestamp)} time={Time(m.RollbackTimestamp)} xid={m.Xid} gid={Text(m.Gid)}\n");

    private void Prepare(string kind, in PrepareMessage m)
        => Line(kind).Append(CultureInfo.InvariantCulture, $" flags={m.Flags} prepare=lsn={m.PrepareLsn} end=lsn={m.EndLsn} time={Time(m.PrepareTimestamp)} xid={m.Xid} gid={Text(m.Gid)}\n");

    private void Tuple(TupleData row)
    {
        _text.Append('[');
        var first = true;
        foreach (var value in row)
        {
            _text.Append(first ? "" : ", ");
            first = false;
            _text.Append(value.Kind switch
            {
                TupleValueKind.Null => "null",
                TupleValueKind.UnchangedToast => "unchanged-toast",
                TupleValueKind.Text => "t:" + Text(value.Data),
                _ => "b:" + Hex(value.Data),
            });
        }
        _text.Append(']');
    }

    private static string Xid(uint xid) => xid == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" xid={xid}");

    private static string Time(long microseconds) => PgTimestamp.ToDateTime(microseconds).ToString("O", CultureInfo.InvariantCulture);

    // JSON-style escaping keeps every value on one line and unambiguous.
    private static string Text(ReadOnlySpan<byte> utf8) => System.Text.Json.JsonSerializer.Serialize(Encoding.UTF8.GetString(utf8));

    private static string Hex(ReadOnlySpan<byte> bytes) => "\\x" + Convert.ToHexStringLower(bytes);
}
