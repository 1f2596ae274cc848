using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text;
using Synchro.Pipeline.Protocol.Messages;
using Kinds = Synchro.Pipeline.Protocol.PgOutputMessageKinds;

namespace Synchro.Pipeline.Protocol;

/// <summary>
/// Parses pgoutput messages (protocol versions 1 to 4), one XLogData payload at a time, and hands
/// each to a handler as a view over the bytes.
/// </summary>
/// <remarks>
/// Stateful: it owns the relation cache and knows whether it is inside a stream block (where
/// data messages carry a transaction id). One parser per replication stream, used by one thread.
/// Each message is validated whole before the handler sees it, and must end exactly where its
/// payload ends. Strings are made only for Relation messages.
/// </remarks>
internal sealed class PgOutputParser
{
    // Smallest encoding of one Relation column: flags, an empty name's NUL, type OID, type modifier.
    private const int MinRelationColumnLength = 1 + 1 + sizeof(uint) + sizeof(int);

    // Smallest encoding of one tuple value: its kind byte ('n' or 'u').
    private const int MinTupleValueLength = 1;

    // PostgreSQL tables have at most 1600 columns (MaxHeapAttributeNumber).
    private const int MaxColumns = 1600;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly RelationCache _relations;

    // Column offsets of the tuples of the current message: the old row's half, then the new row's.
    // Invariant: each half holds at least one more entry than any cached relation has columns.
    private int[] _columnStarts = [];

    // Invariant: null, or the entry the cache holds for its OID (reset whenever a Relation message arrives).
    private RelationInfo? _lastRelation;

    public PgOutputParser(PgOutputOptions options, RelationCache? relations = null)
    {
        Options = options;
        _relations = relations ?? new RelationCache();
    }

    public PgOutputOptions Options { get; }

    public RelationCache Relations => _relations;

    /// <summary>Between Stream Start and Stream Stop.</summary>
    public bool InStreamBlock { get; private set; }

    /// <summary>The transaction of the current stream block, or 0 outside one.</summary>
    public uint StreamXid { get; private set; }

    /// <summary>Parses one message and calls the matching handler method.</summary>
    /// <param name="message">One whole XLogData payload.</param>
    /// <param name="lsn">The payload's WAL position, for error messages.</param>
    /// <param name="handler">Receives the message.</param>
    /// <returns>The message kind byte.</returns>
    /// <exception cref="PgOutputProtocolException">The bytes are not a valid message in this stream's state.</exception>
    public byte Parse<THandler>(ReadOnlySpan<byte> message, Lsn lsn, ref THandler handler)
        where THandler : IPgOutputHandler
    {
        var reader = new PgOutputReader(message, lsn);
        var kind = reader.ReadByte();
        switch (kind)
        {
            case Kinds.Insert: ParseInsert(ref reader, ref handler); break;
            case Kinds.Update: ParseUpdate(ref reader, ref handler); break;
            case Kinds.Delete: ParseDelete(ref reader, ref handler); break;
            case Kinds.Begin: ParseBegin(ref reader, ref handler); break;
            case Kinds.Commit: ParseCommit(ref reader, ref handler); break;
            case Kinds.Relation: ParseRelation(ref reader, ref handler); break;
            case Kinds.Truncate: ParseTruncate(ref reader, ref handler); break;
            case Kinds.Origin: ParseOrigin(ref reader, ref handler); break;
            case Kinds.Type: ParseType(ref reader, ref handler); break;
            case Kinds.Message: ParseMessage(ref reader, ref handler); break;
            case Kinds.StreamStart: ParseStreamStart(ref reader, ref handler); break;
            case Kinds.StreamStop: ParseStreamStop(ref reader, ref handler); break;
            case Kinds.StreamCommit: ParseStreamCommit(ref reader, ref handler); break;
            case Kinds.StreamAbort: ParseStreamAbort(ref reader, ref handler); break;
            case Kinds.StreamPrepare: ParseStreamPrepare(ref reader, ref handler); break;
            case Kinds.BeginPrepare: ParseBeginPrepare(ref reader, ref handler); break;
            case Kinds.Prepare: ParsePrepare(ref reader, ref handler); break;
            case Kinds.CommitPrepared: ParseCommitPrepared(ref reader, ref handler); break;
            case Kinds.RollbackPrepared: ParseRollbackPrepared(ref reader, ref handler); break;
            default:
                reader.ThrowAt(0, $"unknown message kind 0x{kind:X2}");
                break;
        }
        return kind;
    }

    private void ParseInsert<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var xid = ReadStreamXid(ref reader);
        var relation = ReadKnownRelation(ref reader);
        ExpectTupleMarker(ref reader, (byte)'N', "'N' (new row)");
        var newRow = ReadTuple(ref reader, relation, NewRowStarts);
        reader.ExpectEnd();
        handler.OnInsert(new InsertMessage(xid, relation, newRow));
    }

    private void ParseUpdate<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var xid = ReadStreamXid(ref reader);
        var relation = ReadKnownRelation(ref reader);
        var markerOffset = reader.Offset;
        var marker = reader.ReadByte();
        var oldKind = OldTupleKind.None;
        scoped TupleData oldRow = default;
        if (marker is (byte)'K' or (byte)'O')
        {
            oldKind = (OldTupleKind)marker;
            oldRow = ReadTuple(ref reader, relation, OldRowStarts);
            markerOffset = reader.Offset;
            marker = reader.ReadByte();
        }
        if (marker != (byte)'N')
            reader.ThrowAt(markerOffset, $"expected tuple marker 'K', 'O' or 'N', found 0x{marker:X2}");
        var newRow = ReadTuple(ref reader, relation, NewRowStarts);
        reader.ExpectEnd();
        handler.OnUpdate(new UpdateMessage(xid, relation, oldKind, oldRow, newRow));
    }

    private void ParseDelete<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var xid = ReadStreamXid(ref reader);
        var relation = ReadKnownRelation(ref reader);
        var markerOffset = reader.Offset;
        var marker = reader.ReadByte();
        if (marker is not ((byte)'K' or (byte)'O'))
            reader.ThrowAt(markerOffset, $"expected old tuple marker 'K' or 'O', found 0x{marker:X2}");
        var oldRow = ReadTuple(ref reader, relation, OldRowStarts);
        reader.ExpectEnd();
        handler.OnDelete(new DeleteMessage(xid, relation, (OldTupleKind)marker, oldRow));
    }

    private void ParseBegin<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectOutsideStreamBlock(ref reader);
        var finalLsn = reader.ReadLsn();
        var timestamp = reader.ReadInt64();
        var xid = reader.ReadUInt32();
        reader.ExpectEnd();
        handler.OnBegin(new BeginMessage(finalLsn, timestamp, xid));
    }

    private void ParseCommit<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectOutsideStreamBlock(ref reader);
        var message = ReadCommitBody(ref reader, xid: 0);
        handler.OnCommit(message);
    }

    private void ParseRelation<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var xid = ReadStreamXid(ref reader);
        var oid = reader.ReadUInt32();
        var schema = DecodeName(ref reader, "schema name");
        var name = DecodeName(ref reader, "relation name");
        var identityOffset = reader.Offset;
        var identity = reader.ReadByte();
        if (identity is not ((byte)ReplicaIdentity.Default or (byte)ReplicaIdentity.Nothing or (byte)ReplicaIdentity.Full or (byte)ReplicaIdentity.Index))
            reader.ThrowAt(identityOffset, $"unknown replica identity 0x{identity:X2}; expected 'd', 'n', 'f' or 'i'");
        var count = ReadCount(ref reader, MinRelationColumnLength, "column count");
        var columns = ImmutableArray.CreateBuilder<RelationColumn>(count);
        for (var i = 0; i < count; i++)
        {
            var flagsOffset = reader.Offset;
            var flags = reader.ReadByte();
            if (flags > 1)
                reader.ThrowAt(flagsOffset, $"column {i + 1} has unknown flags 0x{flags:X2}; only 1 (part of the key) is defined");
            var columnName = DecodeName(ref reader, "column name");
            var typeOid = reader.ReadUInt32();
            var typeModifier = reader.ReadInt32();
            columns.Add(new RelationColumn(columnName, typeOid, typeModifier, IsKey: flags == 1));
        }
        reader.ExpectEnd();
        var relation = new RelationInfo(oid, schema, name, (ReplicaIdentity)identity, columns.MoveToImmutable());
        _relations.Set(relation);
        _lastRelation = null;
        if (_columnStarts.Length < 2 * (count + 1))
            _columnStarts = new int[2 * (count + 1)];
        handler.OnRelation(new RelationMessage(xid, relation));
    }

    private void ParseTruncate<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var xid = ReadStreamXid(ref reader);
        var countOffset = reader.Offset;
        var count = reader.ReadInt32();
        var optionsOffset = reader.Offset;
        var options = reader.ReadByte();
        if (count <= 0 || (long)count * sizeof(uint) != reader.Remaining)
            reader.ThrowAt(countOffset, $"relation count {count} does not match the {reader.Remaining} bytes of OIDs that follow");
        if ((options & ~(byte)(TruncateOptions.Cascade | TruncateOptions.RestartIdentity)) != 0)
            reader.ThrowAt(optionsOffset, $"unknown truncate options 0x{options:X2}");
        var oidsOffset = reader.Offset;
        var oids = reader.Take(count * sizeof(uint));
        var message = new TruncateMessage(xid, (TruncateOptions)options, oids, _relations);
        for (var i = 0; i < count; i++)
        {
            if (!_relations.TryGet(message.RelationOid(i), out _))
                reader.ThrowAt(oidsOffset + (i * sizeof(uint)), $"relation OID {message.RelationOid(i)} was never described by a Relation message");
        }
        handler.OnTruncate(message);
    }

    private static void ParseOrigin<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var commitLsn = reader.ReadLsn();
        var name = reader.ReadCString();
        reader.ExpectEnd();
        handler.OnOrigin(new OriginMessage(commitLsn, name));
    }

    private void ParseType<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var xid = ReadStreamXid(ref reader);
        var oid = reader.ReadUInt32();
        var schema = reader.ReadCString();
        var name = reader.ReadCString();
        reader.ExpectEnd();
        handler.OnType(new TypeMessage(xid, oid, schema, name));
    }

    private void ParseMessage<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        var xid = ReadStreamXid(ref reader);
        var flagsOffset = reader.Offset;
        var flags = reader.ReadByte();
        if (flags > 1)
            reader.ThrowAt(flagsOffset, $"unknown message flags 0x{flags:X2}; only 1 (transactional) is defined");
        var lsn = reader.ReadLsn();
        var prefix = reader.ReadCString();
        var content = reader.ReadSizedBytes("message content");
        reader.ExpectEnd();
        handler.OnMessage(new LogicalDecodingMessage(xid, flags == 1, lsn, prefix, content));
    }

    private void ParseStreamStart<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectStreaming(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        var xid = reader.ReadUInt32();
        var firstOffset = reader.Offset;
        var first = reader.ReadByte();
        if (first > 1)
            reader.ThrowAt(firstOffset, $"first-segment flag is 0x{first:X2}; expected 0 or 1");
        reader.ExpectEnd();
        InStreamBlock = true;
        StreamXid = xid;
        handler.OnStreamStart(new StreamStartMessage(xid, first == 1));
    }

    private void ParseStreamStop<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectStreaming(ref reader);
        if (!InStreamBlock)
            reader.ThrowAt(0, "Stream Stop without a preceding Stream Start");
        reader.ExpectEnd();
        InStreamBlock = false;
        StreamXid = 0;
        handler.OnStreamStop();
    }

    private void ParseStreamCommit<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectStreaming(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        var xid = reader.ReadUInt32();
        handler.OnStreamCommit(ReadCommitBody(ref reader, xid));
    }

    private void ParseStreamAbort<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectStreaming(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        var xid = reader.ReadUInt32();
        var subXid = reader.ReadUInt32();
        Lsn abortLsn = default;
        long abortTimestamp = 0;
        if (Options.StreamAbortHasAbortInfo)
        {
            abortLsn = reader.ReadLsn();
            abortTimestamp = reader.ReadInt64();
        }
        reader.ExpectEnd();
        handler.OnStreamAbort(new StreamAbortMessage(xid, subXid, abortLsn, abortTimestamp));
    }

    private void ParseBeginPrepare<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectTwoPhase(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        handler.OnBeginPrepare(ReadPrepareBody(ref reader, flags: 0));
    }

    private void ParsePrepare<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectTwoPhase(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        var flags = reader.ReadByte();
        handler.OnPrepare(ReadPrepareBody(ref reader, flags));
    }

    private void ParseStreamPrepare<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectStreaming(ref reader);
        ExpectTwoPhase(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        var flags = reader.ReadByte();
        handler.OnStreamPrepare(ReadPrepareBody(ref reader, flags));
    }

    private void ParseCommitPrepared<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectTwoPhase(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        var flags = reader.ReadByte();
        var commitLsn = reader.ReadLsn();
        var endLsn = reader.ReadLsn();
        var timestamp = reader.ReadInt64();
        var xid = reader.ReadUInt32();
        var gid = reader.ReadCString();
        reader.ExpectEnd();
        handler.OnCommitPrepared(new CommitPreparedMessage(flags, commitLsn, endLsn, timestamp, xid, gid));
    }

    private void ParseRollbackPrepared<THandler>(ref PgOutputReader reader, ref THandler handler) where THandler : IPgOutputHandler
    {
        ExpectTwoPhase(ref reader);
        ExpectOutsideStreamBlock(ref reader);
        var flags = reader.ReadByte();
        var prepareEndLsn = reader.ReadLsn();
        var rollbackEndLsn = reader.ReadLsn();
        var prepareTimestamp = reader.ReadInt64();
        var rollbackTimestamp = reader.ReadInt64();
        var xid = reader.ReadUInt32();
        var gid = reader.ReadCString();
        reader.ExpectEnd();
        handler.OnRollbackPrepared(new RollbackPreparedMessage(flags, prepareEndLsn, rollbackEndLsn, prepareTimestamp, rollbackTimestamp, xid, gid));
    }

    private static CommitMessage ReadCommitBody(ref PgOutputReader reader, uint xid)
    {
        var flags = reader.ReadByte();
        var commitLsn = reader.ReadLsn();
        var endLsn = reader.ReadLsn();
        var timestamp = reader.ReadInt64();
        reader.ExpectEnd();
        return new CommitMessage(xid, flags, commitLsn, endLsn, timestamp);
    }

    private static PrepareMessage ReadPrepareBody(ref PgOutputReader reader, byte flags)
    {
        var prepareLsn = reader.ReadLsn();
        var endLsn = reader.ReadLsn();
        var timestamp = reader.ReadInt64();
        var xid = reader.ReadUInt32();
        var gid = reader.ReadCString();
        reader.ExpectEnd();
        return new PrepareMessage(flags, prepareLsn, endLsn, timestamp, xid, gid);
    }

    // Data messages carry a transaction id only inside a stream block: the top-level transaction's,
    // or a subtransaction's for changes made under a savepoint.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadStreamXid(ref PgOutputReader reader) => InStreamBlock ? reader.ReadUInt32() : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private RelationInfo ReadKnownRelation(ref PgOutputReader reader)
    {
        var offset = reader.Offset;
        var oid = reader.ReadUInt32();
        // Rows come in runs of one table: the last relation answers most lookups without hashing.
        var last = _lastRelation;
        if (last is not null && last.Oid == oid)
            return last;
        if (!_relations.TryGet(oid, out var relation))
            reader.ThrowAt(offset, $"row for relation OID {oid}, which no Relation message has described");
        _lastRelation = relation;
        return relation;
    }

    private static void ExpectTupleMarker(ref PgOutputReader reader, byte expected, string description)
    {
        var offset = reader.Offset;
        var marker = reader.ReadByte();
        if (marker != expected)
            reader.ThrowAt(offset, $"expected tuple marker {description}, found 0x{marker:X2}");
    }

    private Span<int> OldRowStarts => _columnStarts.AsSpan(0, _columnStarts.Length / 2);

    private Span<int> NewRowStarts => _columnStarts.AsSpan(_columnStarts.Length / 2);

    private static TupleData ReadTuple(ref PgOutputReader reader, RelationInfo relation, Span<int> starts)
    {
        var offset = reader.Offset;
        int count = reader.ReadInt16();
        if (count != relation.Columns.Length)
            reader.ThrowAt(offset, $"tuple has {count} columns but relation {relation} (OID {relation.Oid}) has {relation.Columns.Length}");
        return TupleData.Read(ref reader, count, starts);
    }

    private static int ReadCount(ref PgOutputReader reader, int minItemLength, string what)
    {
        var offset = reader.Offset;
        int count = reader.ReadInt16();
        if (count < 0 || count > MaxColumns || (long)count * minItemLength > reader.Remaining)
            reader.ThrowAt(offset, $"{what} {count} is impossible with {reader.Remaining} bytes left");
        return count;
    }

    private static string DecodeName(ref PgOutputReader reader, string what)
    {
        var offset = reader.Offset;
        var bytes = reader.ReadCString();
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            reader.ThrowAt(offset, $"{what} is not valid UTF-8");
            return null;
        }
    }

    private void ExpectOutsideStreamBlock(ref PgOutputReader reader)
    {
        if (InStreamBlock)
            reader.ThrowAt(0, $"message not allowed inside the stream block of transaction {StreamXid}");
    }

    private void ExpectStreaming(ref PgOutputReader reader)
    {
        if (Options.Streaming == PgOutputStreaming.Off)
            reader.ThrowAt(0, $"streaming message, but the stream was started without streaming (protocol version {Options.ProtocolVersion})");
    }

    private void ExpectTwoPhase(ref PgOutputReader reader)
    {
        if (!Options.TwoPhase)
            reader.ThrowAt(0, $"two-phase message, but the stream was started without two_phase (protocol version {Options.ProtocolVersion})");
    }
}
