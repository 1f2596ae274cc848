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
    private const ulong FnvPrime = 1099511628211;

    public long Messages;
    public long Rows;
    public long Values;
    public long Nulls;
    public long ValueBytes;
    public ulong KeyHash;

    public RowTotals() => KeyHash = FnvOffset;

    public readonly long Checksum => Messages ^ (Rows << 8) ^ (Values << 16) ^ (Nulls << 24) ^ (ValueBytes << 32) ^ (long)KeyHash;

    public void HashKey(ReadOnlySpan<byte> key)
    {
        var hash = KeyHash;
        foreach (var b in key)
            hash = (hash ^ b) * FnvPrime;
        KeyHash = hash;
    }

    /// <summary>The same hash over a string's UTF-16 units (equal to <see cref="HashKey(ReadOnlySpan{byte})"/> for ASCII text).</summary>
    public void HashKey(string key)
    {
        var hash = KeyHash;
        foreach (var c in key)
            hash = (hash ^ c) * FnvPrime;
        KeyHash = hash;
    }

    public readonly bool SameAs(in RowTotals other)
        => Messages == other.Messages && Rows == other.Rows && Values == other.Values && Nulls == other.Nulls
            && ValueBytes == other.ValueBytes && KeyHash == other.KeyHash;

    public override readonly string ToString()
        => $"messages {Messages}, rows {Rows}, values {Values}, nulls {Nulls}, value bytes {ValueBytes}, key hash {KeyHash:X16}";
}

/// <summary>Our parser's consumer: touches every column value of every row through the zero-copy views.</summary>
internal struct RowTouchHandler : IPgOutputHandler
{
    public RowTotals Totals = new();

    private RelationInfo? _keyRelation;
    private int _keyIndex;

    public RowTouchHandler()
    {
    }

    public void OnInsert(in InsertMessage message)
    {
        Totals.Messages++;
        Touch(message.NewRow, message.Relation);
    }

    public void OnUpdate(in UpdateMessage message)
    {
        Totals.Messages++;
        if (message.OldRowKind != OldTupleKind.None)
            Touch(message.OldRow, message.Relation);
        Touch(message.NewRow, message.Relation);
    }

    public void OnDelete(in DeleteMessage message)
    {
        Totals.Messages++;
        Touch(message.OldRow, message.Relation);
    }

    private void Touch(TupleData row, RelationInfo relation)
    {
        var key = KeyIndex(relation);
        Totals.Rows++;
        var index = 0;
        foreach (var value in row)
        {
            // Like the baseline, which leaves unchanged TOAST values out of the row.
            if (!value.IsUnchangedToast)
            {
                Totals.Values++;
                if (value.IsNull)
                    Totals.Nulls++;
                else
                    Totals.ValueBytes += value.Data.Length;
                if (index == key)
                    Totals.HashKey(value.Data);
            }
            index++;
        }
    }

    private int KeyIndex(RelationInfo relation)
    {
        if (!ReferenceEquals(relation, _keyRelation))
        {
            _keyRelation = relation;
            _keyIndex = -1;
            for (var i = 0; i < relation.Columns.Length; i++)
            {
                if (relation.Columns[i].IsKey)
                {
                    _keyIndex = i;
                    break;
                }
            }
        }
        return _keyIndex;
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
