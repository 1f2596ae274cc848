using System.Text;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Decoding.Spill;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Decoding;

/// <summary>Streamed in-progress transactions (protocol 2) and two-phase transactions (protocol 3).</summary>
/// <remarks>
/// <para>
/// A streamed transaction's changes are decoded as they arrive (mapped, validated, reduced to the referenced
/// columns) into a staging batch and appended to its spill file (<see cref="SpillStore"/>); nothing reaches a
/// batch before its Stream Commit, so a smaller transaction that commits first is written first (invariant 3 of docs/architecture.md).
/// At Stream Commit the decoder reads the file back into ordinary batches, cut by the batch limits like any large
/// transaction (chunks with <see cref="ChangeBatch.EndsTransaction"/> false), lazily as the writer takes them
/// (<see cref="TryTakeReady"/>), so memory stays bounded by the limits whatever the transaction's size.
/// </para>
/// <para>
/// A prepared transaction's changes (Begin Prepare … Prepare, or a streamed one ended by Stream Prepare) go to a
/// spill file the same way. At Prepare the decoder reads the file back as <see cref="PreparedChunk"/>s (whole spill
/// records, copied as they are), followed by a <see cref="PreparedStep"/>: the writer stores the chunks in the
/// changelog database in the same database transaction as the position past the Prepare — once the server is told
/// that position it sends only Commit Prepared, without the changes. Commit Prepared and Rollback Prepared are steps
/// of their own, in stream order, so the prepared transaction's rows are written at its Commit Prepared.
/// </para>
/// </remarks>
internal sealed partial class ChangeDecoder
{
    private readonly SpillStore? _spill;

    // Holds the one or two changes of the message being spilled; emptied after each.
    private ChangeBatch? _staging;

    // The top-level transaction whose changes go to the spill store now (a stream block, or Begin Prepare to Prepare); 0 otherwise.
    private uint _spillXid;

    // A streamed transaction being read back after its Stream Commit, and that commit.
    private SpillReplay? _replay;
    private CommitMessage _replayCommit;

    // A prepared transaction being read back after its Prepare, and that Prepare's step.
    private SpillChunks? _preparedChunks;
    private int _preparedChunkNumber;
    private PreparedStep? _preparedStep;

    /// <summary>Whether the changes now arriving belong to a transaction that has not ended yet (they go to the spill store).</summary>
    public bool Spilling => _spillXid != 0;

    private bool IsReadingBack => _replay is not null || _preparedStep is not null;

    // The spilled transaction is skipped for its origin, or nothing is decoded any more.
    private bool SpillSkipped => _failed || _skippedSpills.Contains(_spillXid);

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
        {
            spill.AbortSubtransaction(message.Xid, message.SubXid);
        }
    }

    internal void OnStreamCommit(in CommitMessage message)
    {
        var spill = RequireSpill();
        // A transaction skipped for its origin spilled nothing: it commits empty (its position still counts).
        _skippedSpills.Remove(message.Xid);
        // Invariant 1, as in OnBegin: a transaction committed before the resume position was applied already.
        if (message.CommitLsn < _resumeAfter || _failed)
        {
            spill.Delete(message.Xid);
            return;
        }
        StartSkipIfAsked(message.Xid, message.CommitLsn, message.CommitTime);
        _inTransaction = true;
        _skipTransaction = false;
        _transactionHasContent = false;
        _commitTime = message.CommitTime;
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
        _spillXid = 0;
        OnStreamPrepare(message);
    }

    internal void OnStreamPrepare(in PrepareMessage message)
    {
        _skippedSpills.Remove(message.Xid);
        var spill = RequireSpill();
        if (_failed)
        {
            spill.Delete(message.Xid);
            return;
        }
        SendBeforeStep();
        _preparedStep = new PreparedStep(PreparedStepKind.Prepare, Encoding.UTF8.GetString(message.Gid), message.EndLsn);
        _preparedChunks = spill.OpenChunks(message.Xid);
        _preparedChunkNumber = 0;
    }

    internal void OnCommitPrepared(in CommitPreparedMessage message)
    {
        // After a restart past its PREPARE the server may stream the transaction again without ending that stream
        // (the outcome comes as this message): its file is a copy of what sync_prepared_transactions holds.
        _spill?.Delete(message.Xid);
        if (message.CommitLsn < _resumeAfter || _failed)
            return;
        // Skipped on purpose (synchro-pipeline skip --lsn): its stored changes go where replay-failures reaches them.
        var kind = SkipTransactionAt.IsValid && message.CommitLsn == SkipTransactionAt ? PreparedStepKind.SkipCommitPrepared : PreparedStepKind.CommitPrepared;
        SendStep(new PreparedStep(kind, Encoding.UTF8.GetString(message.Gid), message.EndLsn, PgTimestamp.ToDateTime(message.CommitTimestamp)) { Xid = message.Xid, CommitLsn = message.CommitLsn });
    }

    internal void OnRollbackPrepared(in RollbackPreparedMessage message)
    {
        _spill?.Delete(message.Xid);
        if (message.RollbackEndLsn <= _resumeAfter || _failed)
            return;
        SendStep(new PreparedStep(PreparedStepKind.RollbackPrepared, Encoding.UTF8.GetString(message.Gid), message.RollbackEndLsn));
    }

    /// <summary>The batch to decode a spilled message into, or null when the transaction is skipped.</summary>
    private ChangeBatch? Staging() => SpillSkipped ? null : _staging ??= _pool.Rent();

    /// <summary>Appends the staged change(s) of a spilled message to its transaction's file.</summary>
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

    private void SpillTruncate(uint messageXid, IReadOnlyList<TruncatedTable> tables, TruncateOptions options)
        => RequireSpill().AppendTruncate(_spillXid, messageXid, tables, options);

    /// <summary>Goes on with the transaction being read back, if any, until an item is ready or it ends.</summary>
    private void ContinueReadBack()
    {
        if (_replay is not null)
            ContinueReplay();
        else if (_preparedStep is not null)
            ContinuePrepared();
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
                    SendTruncate(tables, options);
                    continue;
                }
                Added(recordBytes);
            }
            if (_ready.Peek() is ChangeBatch cut)
                _spill!.Statistics.ReplayBatch(cut.Count);
        }
        catch (SpillDamagedException e)
        {
            _replay = null;
            replay.Dispose();
            throw Damaged(e);
        }
        catch (IOException e)
        {
            throw SpillStore.Failed("read", _spill!.Directory, e);
        }
    }

    /// <summary>Sends the prepared transaction's next chunk, or, after the last, its Prepare step.</summary>
    private void ContinuePrepared()
    {
        if (_preparedChunks is { } chunks)
        {
            bool read;
            byte[] records;
            try
            {
                read = chunks.TryRead(out records);
            }
            catch (SpillDamagedException e)
            {
                _preparedChunks = null;
                chunks.Dispose();
                throw Damaged(e);
            }
            if (read)
            {
                _ready.Enqueue(new PreparedChunk(_preparedStep!.Gid, _preparedChunkNumber++, records));
                return;
            }
            _preparedChunks = null;
            chunks.Dispose();
        }
        var step = _preparedStep!;
        _preparedStep = null;
        SendStep(step);
    }

    /// <summary>Sends <paramref name="step"/> after the whole transactions decoded before it.</summary>
    private void SendStep(PreparedStep step)
    {
        SendBeforeStep();
        _sentPosition = Lsn.Max(_sentPosition, step.EndLsn);
        _ready.Enqueue(step);
    }

    /// <summary>A two-phase step commits on its own: what was decoded before it goes first.</summary>
    private void SendBeforeStep()
    {
        if (_batch.Transactions > 0)
            CutBatch();
        else
            SendMessages();
    }

    /// <summary>
    /// A local spill file is damaged: said, and thrown on as it is — an <see cref="IOException"/>, so the run reconnects, the
    /// store (and the file) goes, and the server sends the transaction again from the persisted position, which lies
    /// before it (invariant 1 of docs/architecture.md: nothing of it was committed).
    /// </summary>
    private SpillDamagedException Damaged(SpillDamagedException error)
    {
        _spill!.Statistics.Damaged();
        LogSpillFileDamaged(_logger, error.Location, error.Offset, error.Problem);
        return error;
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.SpillFileDamaged, Level = LogLevel.Warning,
        Message = "The spill file {File} is damaged at byte {Offset}: {Problem}. It is not used: the pipeline reconnects and the server sends its transaction again")]
    private static partial void LogSpillFileDamaged(ILogger logger, string file, long offset, string problem);

    private SpillStore RequireSpill()
        => _spill ?? throw new InvalidOperationException("A streaming or two-phase message arrived, but this decoder has no spill store; the pipeline did not request them.");
}
