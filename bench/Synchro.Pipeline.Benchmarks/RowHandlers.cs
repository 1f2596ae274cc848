using System.Runtime.CompilerServices;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// What a consumer does with every row, identically for the baseline and for our parser: count every
/// column value, sum the value lengths, count NULLs, and hash the bytes of the row's key column.
/// </summary>
internal struct RowTotals
{
    private const ulong FnvOffset = 14695981039346656037;

    public long Messages;
    public long Rows;
    public long Values;
    public long Nulls;
    public long ValueBytes;
    public ulong KeyHash;

    public RowTotals() => KeyHash = FnvOffset;

    public readonly long Checksum => Messages ^ (Rows << 8) ^ (Values << 16) ^ (Nulls << 24) ^ (ValueBytes << 32) ^ (long)KeyHash;

    // Cheap on purpose, and the same on both sides: the benchmark measures decoding, and a decoder
    // only locates the id value and hands its bytes on (a byte-by-byte hash would dominate the time).
    public void HashKey(ReadOnlySpan<byte> key) => KeyHash = (KeyHash * 31) + (ulong)key.Length + (key.IsEmpty ? 0UL : key[^1]);

    /// <summary>The same fold over a string (equal to <see cref="HashKey(ReadOnlySpan{byte})"/> for ASCII text).</summary>
    public void HashKey(string key) => KeyHash = (KeyHash * 31) + (ulong)key.Length + (key.Length == 0 ? 0UL : key[^1]);

    public readonly bool SameAs(in RowTotals other)
        => Messages == other.Messages && Rows == other.Rows && Values == other.Values && Nulls == other.Nulls
            && ValueBytes == other.ValueBytes && KeyHash == other.KeyHash;

    public override readonly string ToString()
        => $"messages {Messages}, rows {Rows}, values {Values}, nulls {Nulls}, value bytes {ValueBytes}, key hash {KeyHash:X16}";
}

/// <summary>What a consumer does with one row; the same work is done on the baseline's dictionaries.</summary>
internal interface IRowConsumer
{
    void Row(TupleData row, RelationInfo relation, ref RowTotals totals);
}

/// <summary>Every column value: count, NULLs, lengths, and the key column.</summary>
internal struct EveryColumn : IRowConsumer
{
    private KeyColumns _columns;

    public void Row(TupleData row, RelationInfo relation, ref RowTotals totals)
    {
        var key = _columns.Resolve(relation).Key;
        long values = 0, nulls = 0, bytes = 0;
        var index = 0;
        foreach (var value in row)
        {
            // Like the baseline, which leaves unchanged TOAST values out of the row.
            if (!value.IsUnchangedToast)
            {
                values++;
                if (value.IsNull)
                    nulls++;
                else
                    bytes += value.Data.Length;
                if (index == key)
                    totals.HashKey(value.Data);
            }
            index++;
        }
        totals.Rows++;
        totals.Values += values;
        totals.Nulls += nulls;
        totals.ValueBytes += bytes;
    }
}

/// <summary>What the pipeline's decoder takes from a row: the id (key) column and the owner column.</summary>
internal struct IdAndOwner : IRowConsumer
{
    private KeyColumns _columns;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Row(TupleData row, RelationInfo relation, ref RowTotals totals)
    {
        var (key, owner) = _columns.Resolve(relation);
        totals.Rows++;
        var id = row[key];
        var ownerValue = row[owner];
        totals.Values += 2;
        totals.ValueBytes += id.Data.Length + ownerValue.Data.Length;
        totals.HashKey(id.Data);
    }
}

/// <summary>No column at all: what validating and locating the values costs by itself.</summary>
internal struct NoColumns : IRowConsumer
{
    public readonly void Row(TupleData row, RelationInfo relation, ref RowTotals totals) => totals.Rows++;
}

/// <summary>The key and owner column positions of the last relation seen (looked up once per relation).</summary>
internal struct KeyColumns
{
    public const string OwnerColumn = "owner_id";

    private RelationInfo? _relation;
    private (int Key, int Owner) _indexes;

    public (int Key, int Owner) Resolve(RelationInfo relation)
    {
        if (!ReferenceEquals(relation, _relation))
        {
            _relation = relation;
            var columns = relation.Columns;
            _indexes = (columns.IndexOf(columns.First(c => c.IsKey)), columns.IndexOf(columns.First(c => c.Name == OwnerColumn)));
        }
        return _indexes;
    }
}

/// <summary>Our parser's handler: counts messages and hands every row to <typeparamref name="TRows"/>.</summary>
internal struct RowHandler<TRows> : IPgOutputHandler
    where TRows : struct, IRowConsumer
{
    public RowTotals Totals = new();

    // Mutable on purpose: the consumer caches column positions; a readonly field would be copied per call.
#pragma warning disable IDE0044
    private TRows _rows;
#pragma warning restore IDE0044

    public RowHandler() => _rows = new TRows();

    public void OnInsert(in InsertMessage message)
    {
        Totals.Messages++;
        _rows.Row(message.NewRow, message.Relation, ref Totals);
    }

    public void OnUpdate(in UpdateMessage message)
    {
        Totals.Messages++;
        if (message.OldRowKind != OldTupleKind.None)
            _rows.Row(message.OldRow, message.Relation, ref Totals);
        _rows.Row(message.NewRow, message.Relation, ref Totals);
    }

    public void OnDelete(in DeleteMessage message)
    {
        Totals.Messages++;
        _rows.Row(message.OldRow, message.Relation, ref Totals);
    }

    public void OnBegin(in BeginMessage message) => Totals.Messages++;

    public void OnCommit(in CommitMessage message) => Totals.Messages++;

    public void OnRelation(in RelationMessage message) => Totals.Messages++;

    public void OnOrigin(in OriginMessage message) => Totals.Messages++;

    public void OnType(in TypeMessage message) => Totals.Messages++;

    public void OnTruncate(in TruncateMessage message) => Totals.Messages++;

    public void OnMessage(in LogicalDecodingMessage message) => Totals.Messages++;

    public void OnStreamStart(in StreamStartMessage message) => Totals.Messages++;

    public void OnStreamStop() => Totals.Messages++;

    public void OnStreamCommit(in CommitMessage message) => Totals.Messages++;

    public void OnStreamAbort(in StreamAbortMessage message) => Totals.Messages++;

    public void OnBeginPrepare(in PrepareMessage message) => Totals.Messages++;

    public void OnPrepare(in PrepareMessage message) => Totals.Messages++;

    public void OnCommitPrepared(in CommitPreparedMessage message) => Totals.Messages++;

    public void OnRollbackPrepared(in RollbackPreparedMessage message) => Totals.Messages++;

    public void OnStreamPrepare(in PrepareMessage message) => Totals.Messages++;
}

/// <summary>The baseline's consumer: the same work over its per-row dictionaries.</summary>
internal static class BaselineConsumer
{
    public static void Consume(ref RowTotals totals, BaselineMessage message)
    {
        totals.Messages++;
        if (message is not BaselineRowChange change)
            return;
        if (change.OldRow is not null)
            Touch(ref totals, change.OldRow, change.Relation);
        if (change.NewRow is not null)
            Touch(ref totals, change.NewRow, change.Relation);
    }

    /// <summary>The <see cref="IdAndOwner"/> work: look up the id and owner values by column name.</summary>
    public static void ConsumeIdAndOwner(ref RowTotals totals, BaselineMessage message)
    {
        totals.Messages++;
        if (message is not BaselineRowChange change)
            return;
        if (change.OldRow is not null)
            TakeIdAndOwner(ref totals, change.OldRow, change.Relation);
        if (change.NewRow is not null)
            TakeIdAndOwner(ref totals, change.NewRow, change.Relation);
    }

    private static void TakeIdAndOwner(ref RowTotals totals, Dictionary<string, string?> row, BaselineRelation relation)
    {
        totals.Rows++;
        var id = row[relation.KeyColumn!];
        var owner = row[KeyColumns.OwnerColumn];
        totals.Values += 2;
        totals.ValueBytes += (id?.Length ?? 0) + (owner?.Length ?? 0);
        totals.HashKey(id ?? "");
    }

    private static void Touch(ref RowTotals totals, Dictionary<string, string?> row, BaselineRelation relation)
    {
        totals.Rows++;
        foreach (var (_, value) in row)
        {
            totals.Values++;
            if (value is null)
                totals.Nulls++;
            else
                totals.ValueBytes += value.Length;
        }
        if (relation.KeyColumn is { } key && row.TryGetValue(key, out var id) && id is not null)
            totals.HashKey(id);
    }
}
