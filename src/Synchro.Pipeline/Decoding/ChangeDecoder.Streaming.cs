using System.Text;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Decoding.Spill;

namespace Synchro.Pipeline.Decoding;

/// <summary>Streamed in-progress transactions (protocol 2) and two-phase transactions (protocol 3).</summary>
/// <remarks>
/// <para>
/// A streamed transaction's changes are decoded as they arrive (mapped, validated, reduced to the referenced
/// columns) into a staging batch and appended to its spill file (<see cref="SpillStore"/>); nothing reaches a
/// batch before its Stream Commit, so a smaller transaction that commits first is written first (invariant 3).
/// At Stream Commit the file is read back into ordinary batches, cut by the batch limits like any large
/// transaction (chunks with <see cref="ChangeBatch.EndsTransaction"/> false), lazily as the writer takes them
/// (<see cref="TryTakeReady"/>), so memory stays bounded by the limits whatever the transaction's size.
/// </para>
/// <para>
/// A prepared transaction's changes (Begin Prepare … Prepare, or a streamed one ended by Stream Prepare) go to a
/// spill file the same way; at Prepare the file is handed to the writer, which stores it in the changelog database
/// in the same database transaction as the position past the Prepare — once the server is told that position it
/// sends only Commit Prepared, without the changes. Commit Prepared and Rollback Prepared become batches of their
/// own, in stream order, so the prepared transaction's rows are written at its Commit Prepared.
/// </para>
/// </remarks>
internal sealed partial class ChangeDecoder
{
    private readonly SpillStore? _spill;

    // Holds the one or two changes of the message being spilled; emptied after each.
    private ChangeBatch? _staging;

    // True while a spilled message is decoded into _staging (the batch limits do not apply to it).
    private bool _redirected;

    // The top-level transaction whose changes go to the spill store now (a stream block, or Begin Prepare to Prepare); 0 otherwise.
    private uint _spillXid;

    // A streamed transaction being read back after its Stream Commit, and that commit.
    private SpillReplay? _replay;
    private CommitMessage _replayCommit;

    /// <summary>Whether the changes now arriving belong to a transaction that has not ended yet (they go to the spill store).</summary>
    public bool Spilling => _spillXid != 0;

    internal void OnSpilledInsert(in InsertMessage message, int messageBytes)
        => Spill(message, message.Xid, messageBytes, static (ChangeDecoder d, in InsertMessage m, int bytes) => d.OnInsert(m, bytes));

    internal void OnSpilledUpdate(in UpdateMessage message, int messageBytes)
        => Spill(message, message.Xid, messageBytes, static (ChangeDecoder d, in UpdateMessage m, int bytes) => d.OnUpdate(m, bytes));

    internal void OnSpilledDelete(in DeleteMessage message, int messageBytes)
        => Spill(message, message.Xid, messageBytes, static (ChangeDecoder d, in DeleteMessage m, int bytes) => d.OnDelete(m, bytes));

    internal void OnSpilledTruncate(in TruncateMessage message)
        => Spill(message, message.Xid, 0, static (ChangeDecoder d, in TruncateMessage m, int _) => d.OnTruncate(m));

    private delegate void DecodeMessage<T>(ChangeDecoder decoder, in T message, int messageBytes)
        where T : allows ref struct;

    /// <summary>Decodes one message of a spilled transaction into the staging batch, then appends what it added to the transaction's file.</summary>
    private void Spill<T>(in T message, uint messageXid, int messageBytes, DecodeMessage<T> decode)
        where T : allows ref struct
    {
        if (_skippedSpills.Contains(_spillXid))
            return;
        var saved = Redirect();
        try
        {
            decode(this, message, messageBytes);
        }
        finally
        {
            Restore(saved);
        }
        SpillStaged(messageXid);
    }

    internal void OnStreamStart(in StreamStartMessage message)
    {
        var spill = RequireSpill();
        // A first segment starts the transaction over (it cannot have a file unless a previous attempt left one).
        if (message.IsFirstSegment)
            spill.Delete(message.Xid);
        _spillXid = message.Xid;
    }

    internal void OnStreamStop() => _spillXid = 0;

    internal void OnStreamAbort(in StreamAbortMessage message)
    {
        var spill = RequireSpill();
        if (message.IsWholeTransaction)
        {
            _skippedSpills.Remove(message.Xid);
            spill.Delete(message.Xid);
        }
        else
            spill.AbortSubtransaction(message.Xid, message.SubXid);
    }

    internal void OnStreamCommit(in CommitMessage message)
    {
        var spill = RequireSpill();
        // A transaction skipped for its origin spilled nothing: it commits empty (its position still counts).
        _skippedSpills.Remove(message.Xid);
        // Invariant 1, as in OnBegin: a transaction committed before the resume position was applied already.
        if (message.CommitLsn < _resumeAfter)
        {
            spill.Delete(message.Xid);
            return;
        }
        _inTransaction = true;
        _skipTransaction = false;
        _commitTime = message.CommitTime;
        if (_batch.FirstCommitTime == default)
            _batch.FirstCommitTime = _commitTime;
        _replayCommit = message;
        _replay = spill.OpenReplay(message.Xid);
        if (_replay is null)
            OnCommit(message);
    }

    internal void OnBeginPrepare(in PrepareMessage message)
    {
        var spill = RequireSpill();
        spill.Delete(message.Xid);
        _spillXid = message.Xid;
    }

    internal void OnPrepare(in PrepareMessage message)
    {
        _skippedSpills.Remove(message.Xid);
        _spillXid = 0;
        Prepared(PreparedActionKind.Prepare, message.Gid, RequireSpill().Detach(message.Xid), message.EndLsn, commitTime: null);
    }

    internal void OnStreamPrepare(in PrepareMessage message)
    {
        _skippedSpills.Remove(message.Xid);
        Prepared(PreparedActionKind.Prepare, message.Gid, RequireSpill().Detach(message.Xid), message.EndLsn, commitTime: null);
    }

    internal void OnCommitPrepared(in CommitPreparedMessage message)
    {
        // After a restart past its PREPARE the server may stream the transaction again without ending that stream
        // (the outcome comes as this message): its file is a copy of what sync_prepared_transactions holds.
        _spill?.Delete(message.Xid);
        if (message.CommitLsn < _resumeAfter)
            return;
        Prepared(PreparedActionKind.CommitPrepared, message.Gid, null, message.EndLsn, Protocol.PgTimestamp.ToDateTime(message.CommitTimestamp));
    }

    internal void OnRollbackPrepared(in RollbackPreparedMessage message)
    {
        _spill?.Delete(message.Xid);
        if (message.RollbackEndLsn <= _resumeAfter)
            return;
        Prepared(PreparedActionKind.RollbackPrepared, message.Gid, null, message.RollbackEndLsn, commitTime: null);
    }

    /// <summary>Reads the replayed transaction on until a batch is cut or it ends (then it commits like any transaction).</summary>
    private void ContinueReplay()
    {
        var replay = _replay!;
        try
        {
            while (_ready.Count == 0)
            {
                if (!replay.Reader.TryRead(_batch, out var recordBytes))
                {
                    _replay = null;
                    replay.Dispose();
                    _spill!.Statistics.Replayed();
                    _spill.Statistics.ReplayBatch(_batch.Count);
                    OnCommit(_replayCommit);
                    return;
                }
                if (replay.Reader.TakeTruncate(out var tables, out var options))
                {
                    var truncate = StartTruncate(options);
                    truncate.TruncatedTables.AddRange(tables);
                    truncate.EndsTransaction = false;
                    Cut();
                    continue;
                }
                Added(recordBytes);
            }
            _spill!.Statistics.ReplayBatch(_ready.Peek().Count);
        }
        catch (IOException e)
        {
            throw SpillStore.Failed("read", _spill!.Directory, e);
        }
    }

    /// <summary>Ends the current batch (whole transactions before this step) and emits <paramref name="kind"/> as a batch of its own.</summary>
    private void Prepared(PreparedActionKind kind, ReadOnlySpan<byte> gid, string? spillPath, Protocol.Lsn endLsn, DateTime? commitTime)
    {
        if (_batch.Transactions > 0)
            Cut();
        _batch.Prepared = new PreparedAction(kind, Encoding.UTF8.GetString(gid), spillPath, _limits);
        _batch.EndLsn = endLsn;
        _batch.EndsTransaction = true;
        if (commitTime is { } time)
        {
            _batch.Transactions = 1;
            _batch.FirstCommitTime = time;
            _batch.CommitTimes.Add(time);
        }
        Cut();
    }

    private (ChangeBatch Batch, bool Skip) Redirect()
    {
        var saved = (_batch, _skipTransaction);
        _staging ??= _pool.Rent();
        _batch = _staging;
        _skipTransaction = false;
        _redirected = true;
        return saved;
    }

    private void Restore((ChangeBatch Batch, bool Skip) saved)
    {
        (_batch, _skipTransaction) = saved;
        _redirected = false;
    }

    private void SpillStaged(uint messageXid)
    {
        var staging = _staging!;
        try
        {
            RequireSpill().Append(_spillXid, messageXid, staging);
        }
        finally
        {
            staging.Clear();
        }
    }

    private SpillStore RequireSpill()
        => _spill ?? throw new InvalidOperationException("A streaming or two-phase message arrived, but this decoder has no spill store; the pipeline did not request them.");
}
