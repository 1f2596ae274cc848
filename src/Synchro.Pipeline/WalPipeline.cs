using System.IO.Pipelines;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Partitions;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Runtime;
using Synchro.Pipeline.Decoding.Items;

namespace Synchro.Pipeline;

/// <summary>
/// Consumes one logical replication slot and keeps the changelog up to date: reader → decoder →
/// writer → committer, each a long-running task joined by bounded queues.
/// </summary>
/// <remarks>
/// Exactly once: every committed source transaction produces its changelog rows once, across
/// crashes and restarts — the position is committed with the rows it covers, and on resume every
/// transaction at or before it is skipped. A lost connection is retried with capped exponential
/// backoff from the persisted position; configuration errors, a dropped slot and undecodable bytes
/// are fatal. One <see cref="RunAsync"/> at a time per instance.
/// </remarks>
public sealed partial class WalPipeline : IAsyncDisposable
{
    // The writer works on one item while the decoder fills the next batch; more only adds memory.
    private const int ItemQueueCapacity = 2;

    // pgoutput's origin option.
    private const int OriginOptionSinceVersion = 16;

    // How long a clean stop waits to confirm its last position to the server.
    private static readonly TimeSpan s_finalConfirmTimeout = TimeSpan.FromSeconds(5);

    private readonly WalPipelineOptions _options;
    private readonly ILogger _logger;
    private readonly string _sourceConnectionString;
    private readonly PostgresConnections _connections;
    private readonly NpgsqlDataSource _source;
    private readonly NpgsqlDataSource _changelog;
    private readonly IBucketAssigner _assigner;
    private readonly PipelineMetrics _metrics;
    private readonly CommittedPosition _position = new();
    private int _running;
    // The failover confirm rule of the current run; null when it is off (docs/failover.md).
    private StandbyFlushGate? _standbys;
    // The position of an earlier slot, while the slot this start created has not been given it yet (start-up retries).
    private Lsn? _slotMovePending;

    /// <summary>Creates a pipeline; nothing connects until <see cref="RunAsync"/>.</summary>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    /// <exception cref="WalPipelineConfigurationException"><see cref="WalPipelineOptions.ConfigureDataSource"/> threw, or left a builder Npgsql refuses.</exception>
    public WalPipeline(WalPipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = options.LoggerFactory.CreateLogger(LogCategory);
        _metrics = new PipelineMetrics(() => _position.Value, options.SlotName, options.MeterFactory);
        // Every session runs with a pinned search_path (WalPipelineOptions.Sessions). Statement timeouts are the server's;
        // Npgsql's client-side one is raised above them on the pooled sessions, a backstop for a server that stopped answering.
        var timeouts = options.StatementTimeouts;
        _sourceConnectionString = options.SourceSessionString;
        _connections = options.Connections;
        _source = _connections.DataSource(timeouts.WithClientBackstop(_sourceConnectionString), PipelineConnectionKind.Source);
        _changelog = _connections.DataSource(timeouts.WithClientBackstop(options.ChangelogSessionString), PipelineConnectionKind.Changelog);
        _assigner = new GuardedBucketAssigner(options.Tables, options.BucketAssigner, options.MaxBucketsPerChange);
    }

    /// <summary>The lifecycle log category; each stage logs under it with a suffix (<c>.Reader</c>, <c>.Decoder</c>, <c>.Writer</c>, <c>.Committer</c>).</summary>
    public const string LogCategory = "Synchro.Pipeline";

    /// <summary>Changes committed to the changelog since this instance was created.</summary>
    public long CommittedChanges => _metrics.CommittedChanges;

    /// <summary>A snapshot of the pipeline's state, position, lag and counts; cheap, callable from any thread.</summary>
    public WalPipelineStatus GetStatus() => _metrics.Snapshot();

    /// <summary>
    /// Checks the configuration, migrates the sidecar tables, creates the slot if allowed, then
    /// consumes until <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <returns>
    /// A task that completes after a clean shutdown: the batch in flight is finished (or cancelled and rolled back if it is
    /// still running 5 s after the stop), never half-written; idle, within a fraction of a second.
    /// </returns>
    /// <exception cref="WalPipelineConfigurationException">The database is not set up for this pipeline; the message says what to change.</exception>
    /// <exception cref="WalPipelineException">A fatal error: dropped slot, undecodable stream, failed write; the message says what to do.</exception>
    /// <exception cref="InvalidOperationException"><see cref="RunAsync"/> is already running on this instance.</exception>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
            throw new InvalidOperationException("This pipeline is already running; one RunAsync at a time per instance.");
        try
        {
            await RunCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private async Task RunCoreAsync(CancellationToken cancellationToken)
    {
        _metrics.SetState(WalPipelineState.Starting);
        var source = new NpgsqlConnectionStringBuilder(_options.ConnectionString);
        LogStarting(_logger, _options.SlotName, _options.PublicationName, _options.Tables.Count, source.Host, source.Port, source.Database, source.Username);
        await using var slotLock = _slotLock = NewSlotLock();
        await using var changelogLock = _changelogLock = NewChangelogLock();
        try
        {
            // Start-up is inside the loop: a server that is starting, stopping, unreachable or out of connections is waited
            // for like a lost connection; only configuration, privileges and what the policy calls fatal end the start.
            var retry = new ReconnectPolicy(_options.SlotName, _options.MaxReconnectDelay, _options.MaxStatementRetries, _position);
            var prepared = false;
            while (true)
            {
                try
                {
                    retry.AttemptStarting();
                    if (!prepared)
                    {
                        await EnsureLocksAsync(cancellationToken).ConfigureAwait(false);
                        await PrepareAsync(cancellationToken).ConfigureAwait(false);
                        prepared = true;
                    }
                    await RunStagesAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    // Fatal errors go on to the handlers below, as does the policy's own when retries are used up.
                    if (retry.Decide(e) is not { } reason)
                        throw;
                    var delay = retry.NextDelay();
                    _metrics.Retrying(prepared ? WalPipelineState.Reconnecting : WalPipelineState.Starting, e, retry.Attempt, retry.Since);
                    if (reason == RetryReason.Conflict)
                        LogConflictRetrying(_logger, e, retry.Conflicts, retry.MaxConflictRetries, delay.TotalMilliseconds, PostgresErrors.DescribeConflict(e));
                    else if (prepared)
                        LogReconnecting(_logger, e, delay.TotalMilliseconds, retry.Attempt, PostgresErrors.OneLine(e));
                    else
                        LogStartRetrying(_logger, e, retry.Attempt, delay.TotalMilliseconds, (DateTimeOffset.UtcNow - retry.Since).TotalSeconds, PostgresErrors.OneLine(e));
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && (PostgresErrors.IsCancellation(e) || PostgresErrors.IsConnectionLoss(e)))
        {
            // The stop was asked for: however Npgsql reported the cancellation (a read it broke off is an NpgsqlException),
            // or a connection lost meanwhile (nothing is half-written either way; the next start resumes from the position).
            await ConfirmOnStopAsync().ConfigureAwait(false);
            _metrics.SetState(WalPipelineState.Stopped);
            LogStopped(_logger, _options.SlotName);
        }
        catch (WalPipelineConfigurationException e)
        {
            _metrics.SetState(WalPipelineState.Failed, e);
            if (e.RefusesPosition)
                LogPositionRefused(_logger, e, string.Join(" ", e.Errors));
            else
                LogConfigurationError(_logger, e, e.Message);
            throw;
        }
        catch (Exception e)
        {
            var fatal = Describe(e);
            _metrics.SetState(WalPipelineState.Failed, fatal);
            LogFatal(_logger, fatal, fatal.Message);
            if (ReferenceEquals(fatal, e))
                throw;
            throw fatal;
        }
        finally
        {
            _metrics.LocksReleased();
        }
    }

    private async Task PrepareAsync(CancellationToken cancellationToken)
    {
        // Before anything is created: a changelog database of its own must be UTF8 too (the source's checks cover its own).
        if (_options.ChangelogConnectionString is not null)
        {
            await using var changelog = await _changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await CheckChangelogEncodingAsync(changelog, _options, cancellationToken).ConfigureAwait(false);
        }
        StartupCheckResult checks;
        await using (var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            checks = await CheckSourceAsync(connection, _changelog, _options, busySendersFail: false, cancellationToken).ConfigureAwait(false);
        foreach (var warning in checks.Warnings)
            LogStartupWarning(_logger, warning);
        UseStandby(checks.Standby);
        await MigrateIfPendingAsync(cancellationToken).ConfigureAwait(false);

        // Invariant 8: nothing is created on a source the persisted position does not belong to.
        var found = await VerifyPositionAsync(replication: null, cancellationToken).ConfigureAwait(false);
        var identity = found.Source!.Identity;
        // A missing slot with a position: the slot was dropped, and the new one starts later than the position.
        Lsn? earlier = !checks.SlotExists && found.Persisted is { Position: { IsValid: true } position } ? position : null;
        if (!checks.SlotExists && !_options.InitialSnapshot)
        {
            if (await CreatingSlotAsync(ct => ReplicationSlots.CreateIfMissingAsync(_source, _options.SlotName, twoPhase: _options.TwoPhase, failover: _options.Failover, ct), cancellationToken).ConfigureAwait(false))
            {
                LogSlotCreated(_logger, _options.SlotName);
                _slotMovePending = earlier;
            }
        }
        // An attempt that created the slot and failed before it moved the position leaves the move to the next one.
        if (_slotMovePending is { } before && !_options.InitialSnapshot)
        {
            await MoveToNewSlotAsync(identity, before, cancellationToken).ConfigureAwait(false);
            _slotMovePending = null;
        }
        await using (var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            await CheckSlotTwoPhaseAsync(connection, cancellationToken).ConfigureAwait(false);
        if (_options.InitialSnapshot)
            await PrepareSlotWithSnapshotAsync(checks.SlotExists, identity, earlier, cancellationToken).ConfigureAwait(false);
    }

    private async Task RunStagesAsync(CancellationToken cancellationToken)
    {
        // Taken again, on new sessions if the old ones were lost, before this run reads or writes.
        await EnsureLocksAsync(cancellationToken).ConfigureAwait(false);
        var replicationString = await ReplicationConnectionStringAsync(_connections, _sourceConnectionString, cancellationToken).ConfigureAwait(false);
        if (ReplicationHost.IsMultiHost(_sourceConnectionString))
        {
            var chosen = new NpgsqlConnectionStringBuilder(replicationString);
            LogReplicationHost(_logger, chosen.Host, chosen.Port);
        }
        await using var replication = await _connections.ReplicationAsync(replicationString, cancellationToken).ConfigureAwait(false);
        replication.WalReceiverStatusInterval = _options.StatusInterval;
        await replication.Open(cancellationToken).ConfigureAwait(false);

        // Invariant 8, at every run: a reconnect may reach another server (a failover), or find the changelog restored.
        var found = await VerifyPositionAsync(replication, cancellationToken).ConfigureAwait(false);
        var position = found.Persisted?.Position ?? Lsn.Invalid;
        _position.Advance(position);
        Lsn skip;
        await using (var connection = await _changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            skip = await LoadSkipAsync(connection, cancellationToken).ConfigureAwait(false);
        LogStarted(_logger, _options.SlotName, position.ToString());

        // Disposed before the replication connection: its grace timer belongs to this run.
        using var stages = new StageGroup(cancellationToken, _logger);
        var pipe = new Pipe(StageChannels.Wal(_options.WalBufferBytes, _options.ReadCoalescing));
        var items = Channel.CreateBounded<DecodedItem>(StageChannels.Items(ItemQueueCapacity));
        var committed = Channel.CreateBounded<CommitReceipt>(StageChannels.Receipts(ItemQueueCapacity + 1));

        var parser = new PgOutputParser(ParserOptions(replication.PostgreSqlVersion));
        var loggers = _options.LoggerFactory;
        var decoderLogger = loggers.CreateLogger(LogCategory + ".Decoder");
        using var spill = CreateSpillStore(decoderLogger);
        var limits = new BatchLimits(_options.MaxBatchRows, _options.MaxBatchBytes);
        var decoder = new ChangeDecoder(_options.Tables, limits, position, decoderLogger, spill)
        {
            BinaryTuples = _options.BinaryTupleMode,
            MessageHandlers = Handlers,
            SkipOrigins = Origins,
            SkipTransactionAt = skip,
            Relations = new RelationResolver(_source, _options.Tables),
        };
        var endStream = new WalSenderCancel(_source, replication.ProcessID, _logger);
        var reader = new ReaderStage(replication, _options.SlotName, StreamStart(position), PluginOptions(replication.PostgreSqlVersion), pipe.Writer, _metrics, _options.ReadCoalescing, endStream);
        var decoding = new DecoderStage(pipe.Reader, items.Writer, parser, decoder, _options.BatchLinger, _metrics);
        var writer = new WriterStage(items.Reader, committed.Writer, _changelog, _source, _options.SlotName, _options.Tables, limits, _assigner, _metrics, _options.SlowBatchThreshold, loggers.CreateLogger(LogCategory + ".Writer"))
        {
            MessageHandlers = Handlers,
            TagOwnWrites = _options.TagOwnWrites,
            Lock = _changelogLock,
            Source = found.Source!.Identity,
            Limits = new ChangelogLimits(_options.MaxRecordIdBytes, _options.MaxBucketIdBytes),
            Timeouts = _options.StatementTimeouts,
            Cascade = _options.CascadeParentMoves
                && new ParentMoveCascade(_options.Tables, _options.CascadeChunkRows) { Limits = new ChangelogLimits(_options.MaxRecordIdBytes, _options.MaxBucketIdBytes) } is { IsNeeded: true } cascade
                ? cascade : null,
        };
        _standbys = await FailoverGateAsync(found.Source!.Identity, cancellationToken).ConfigureAwait(false);
        var committer = new LsnCommitter(committed.Reader, _position, replication, loggers.CreateLogger(LogCategory + ".Committer")) { Standbys = _standbys, Slot = _options.SlotName };
        _metrics.RunStarted(new StageQueues(() => items.Reader.Count, () => committed.Reader.Count, () => items.Reader.TryPeek(out var next) && next is ChangeBatch batch ? batch.FirstCommitTime : default));

        stages.Start(reader.RunAsync);
        stages.Start(decoding.RunAsync);
        if (_options.DiscardWrites)
            stages.Start(new DiscardingWriterStage(items.Reader, committed.Writer, _metrics).RunAsync);
        else
            stages.Start(writer.RunAsync);
        stages.Start(committer.RunAsync);
        StartWatchers(stages);
        await stages.WhenAllAsync().ConfigureAwait(false);
        // Every stage ended without being cancelled: the server closed the stream (shutting down, say).
        throw new EndOfStreamException("The server ended the replication stream.");
    }

    /// <summary>
    /// The source connection string for a replication connection: naming the one host a multi-host string reaches now
    /// (<see cref="ReplicationHost"/>), with a 64 KiB read buffer unless it sets its own (Npgsql's default is 8 KiB).
    /// </summary>
    /// <remarks>A coalesced read (<see cref="ReaderStage"/>) then takes a millisecond of a busy stream in one or two system calls.</remarks>
    private static async Task<string> ReplicationConnectionStringAsync(PostgresConnections connections, string connectionString, CancellationToken cancellationToken)
    {
        const int DefaultReadBufferSize = 8192;
        var builder = new NpgsqlConnectionStringBuilder(await ReplicationHost.ResolveAsync(connections, connectionString, cancellationToken).ConfigureAwait(false));
        if (builder.ReadBufferSize == DefaultReadBufferSize)
            builder.ReadBufferSize = 64 * 1024;
        return builder.ConnectionString;
    }

    /// <summary>
    /// The final status update: the stream is closed by now, so the slot is advanced through SQL to the last
    /// committed position. Best effort — the persisted position is what a restart resumes from either way. Never to a
    /// position the server has not written (invariant 2), which the slot would take as its WAL end.
    /// </summary>
    private async Task ConfirmOnStopAsync()
    {
        var committed = _position.Value;
        if (!committed.IsValid)
            return;
        using var timeout = new CancellationTokenSource(s_finalConfirmTimeout);
        try
        {
            // The failover rule (docs/failover.md): only once the standbys hold every changelog commit made so far.
            if (_standbys is not null && await _standbys.ReadAsync(timeout.Token).ConfigureAwait(false) is { Slots.Count: > 0 } flush
                && !(flush.StandbysFlushed.IsValid && flush.StandbysFlushed >= flush.Flushed))
            {
                LogConfirmOnStopHeld(_logger, committed, flush.Behind);
                return;
            }
            var (outcome, walEnd) = await ReplicationSlots.ConfirmAsync(_source, _options.SlotName, committed, timeout.Token).ConfigureAwait(false);
            if (outcome == SlotConfirmation.Advanced)
                LogConfirmedOnStop(_logger, committed);
            else if (outcome == SlotConfirmation.NotWritten)
                LogConfirmOnStopRefused(_logger, committed, walEnd);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
        {
            LogConfirmOnStopFailed(_logger, e, committed, e.Message);
        }
    }

    private List<KeyValuePair<string, string?>> PluginOptions(Version serverVersion)
    {
        List<KeyValuePair<string, string?>> options =
        [
            new("proto_version", ProtocolVersion(serverVersion).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("messages", "true"),
            // The replication command's string literal doubles single quotes; the list item is a quoted identifier.
            new("publication_names", PgIdentifier.Quote(_options.PublicationName).Replace("'", "''", StringComparison.Ordinal)),
            .. StreamingPluginOptions(serverVersion),
        ];
        if (_options.BinaryTupleMode)
            options.Add(new("binary", "true"));
        // Invariant 10: the server leaves out every transaction that carries a replication origin, the pipeline's own writes among them.
        if (_options.FilterOriginsOnServer && serverVersion.Major >= OriginOptionSinceVersion)
            options.Add(new("origin", "none"));
        return options;
    }

    private WalPipelineException Describe(Exception error) => error switch
    {
        PostgresException { SqlState: PostgresErrorCodes.UndefinedObject } pg when pg.MessageText.Contains("replication slot", StringComparison.Ordinal)
            => new WalPipelineException($"Replication slot '{_options.SlotName}' no longer exists (it was dropped). The changes since the last committed batch cannot be read again; restart the pipeline to create a new slot, and resync clients if changes were missed.", error),
        // PostgreSQL 15 refuses a lost slot with "cannot read from logical replication slot" (55000), 17 with "can no longer
        // get changes from", 18 with "can no longer access"; the word "invalidated" and the reason are only in the detail,
        // which Npgsql redacts by default.
        PostgresException pg when pg.MessageText.Contains("can no longer get changes from replication slot", StringComparison.Ordinal)
            || pg.MessageText.Contains("can no longer access replication slot", StringComparison.Ordinal)
            || (pg.SqlState == PostgresErrorCodes.ObjectNotInPrerequisiteState && pg.MessageText.StartsWith("cannot read from logical replication slot", StringComparison.Ordinal))
            || pg.MessageText.Contains("invalidated", StringComparison.Ordinal)
            => new WalPipelineException(SlotInvalidation.Message(_options.SlotName, SlotInvalidation.ReasonInDetail(pg.Detail), pg.MessageText), error),
        NpgsqlException { InnerException: PasswordProviderException provider } => new WalPipelineException(provider.Message, error),
        PasswordProviderException provider => new WalPipelineException(provider.Message, error),
        PgOutputProtocolException protocol
            => new WalPipelineException($"The replication stream could not be decoded: {protocol.Message} Report this with the LSN; the pipeline will not skip it.", error),
        WalPipelineException pipeline => pipeline,
        _ => new WalPipelineException($"The pipeline stopped: {error.Message}", error),
    };

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync().ConfigureAwait(false);
        await _changelog.DisposeAsync().ConfigureAwait(false);
        if (_primary is not null)
            await _primary.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
    }

    [LoggerMessage(EventId = EventIds.FailoverConfirmOnStopHeld, Level = LogLevel.Information,
        Message = "Did not confirm position {Position} to the server on stop: not every standby of synchronized_standby_slots has flushed the changelog's last commit ({Behind}). "
            + "The slot keeps the WAL after its confirmed position until the next start, which resumes from the persisted position")]
    private static partial void LogConfirmOnStopHeld(ILogger logger, Lsn position, string behind);

    [LoggerMessage(EventId = EventIds.ReplicationHostResolved, Level = LogLevel.Information,
        Message = "Replication connection to {Host}:{Port}, the host the multi-host connection string reaches now")]
    private static partial void LogReplicationHost(ILogger logger, string? host, int port);

    [LoggerMessage(EventId = EventIds.Starting, Level = LogLevel.Information, Message = "Starting: slot {Slot}, publication {Publication}, {Tables} registered table(s), source {Host}:{Port}/{Database} as {User}")]
    private static partial void LogStarting(ILogger logger, string slot, string publication, int tables, string? host, int port, string? database, string? user);

    [LoggerMessage(EventId = EventIds.DatabaseNotSetUp, Level = LogLevel.Critical, Message = "The database is not set up for this pipeline: {Problems}")]
    private static partial void LogConfigurationError(ILogger logger, Exception error, string problems);

    [LoggerMessage(EventId = EventIds.ConfirmedOnStop, Level = LogLevel.Information, Message = "Confirmed position {Position} to the server on stop")]
    private static partial void LogConfirmedOnStop(ILogger logger, Lsn position);

    [LoggerMessage(EventId = EventIds.ConfirmOnStopFailed, Level = LogLevel.Warning, Message = "Could not confirm position {Position} to the server on stop ({Reason}); the slot keeps the WAL after it until the next start, which resumes from the persisted position")]
    private static partial void LogConfirmOnStopFailed(ILogger logger, Exception error, Lsn position, string reason);

    [LoggerMessage(EventId = EventIds.Replicating, Level = LogLevel.Information, Message = "Replicating from slot {Slot} after position {Position}")]
    private static partial void LogStarted(ILogger logger, string slot, string position);

    [LoggerMessage(EventId = EventIds.SlotCreated, Level = LogLevel.Information, Message = "Created replication slot {Slot}")]
    private static partial void LogSlotCreated(ILogger logger, string slot);

    [LoggerMessage(EventId = EventIds.StartupWarning, Level = LogLevel.Warning, Message = "{Warning}")]
    private static partial void LogStartupWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = EventIds.Reconnecting, Level = LogLevel.Warning, Message = "Lost the connection ({Reason}); reconnecting in {DelayMs:F0} ms from the persisted position (attempt {Attempt})")]
    private static partial void LogReconnecting(ILogger logger, Exception error, double delayMs, int attempt, string reason);

    [LoggerMessage(EventId = EventIds.StartRetrying, Level = LogLevel.Warning,
        Message = "Could not start, attempt {Attempt} ({Reason}); trying again in {DelayMs:F0} ms (failing for {Seconds:F0} s). A server that is starting, stopping, unreachable or out of connections is waited for; only configuration and privilege errors stop the start")]
    private static partial void LogStartRetrying(ILogger logger, Exception error, int attempt, double delayMs, double seconds, string reason);

    [LoggerMessage(EventId = EventIds.ConflictRetrying, Level = LogLevel.Warning,
        Message = "{Reason} Retry {Retry} of {MaxRetries} (MaxStatementRetries) in {DelayMs:F0} ms: the failed attempt's changelog transaction was rolled back, and the next resumes from the persisted position")]
    private static partial void LogConflictRetrying(ILogger logger, Exception error, int retry, int maxRetries, double delayMs, string reason);

    [LoggerMessage(EventId = EventIds.FatalError, Level = LogLevel.Critical, Message = "Stopped on a fatal error: {Reason}")]
    private static partial void LogFatal(ILogger logger, Exception error, string reason);

    [LoggerMessage(EventId = EventIds.Stopped, Level = LogLevel.Information, Message = "Stopped consuming slot {Slot}")]
    private static partial void LogStopped(ILogger logger, string slot);
}
