using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding.Spill;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline;

// Streaming of large in-progress transactions (pgoutput protocol 2; 4 for the load harness's comparison) and two-phase decoding (protocol 3).
public sealed partial class WalPipeline
{
    private const string SlotTwoPhaseSql = "SELECT two_phase FROM pg_catalog.pg_replication_slots WHERE slot_name = @slot";

    /// <summary>What the spill store did across this instance's runs (tests and diagnostics).</summary>
    internal SpillStatistics SpillStatistics { get; } = new();

    // pgoutput's protocol 4 and streaming 'parallel' (docs/performance.md, "Protocol 4").
    private const int ParallelStreamingSinceVersion = 16;

    private bool ParallelStreaming(Version serverVersion) =>
        _options.ParallelStreaming && _options.StreamLargeTransactions && serverVersion.Major >= ParallelStreamingSinceVersion;

    private int ProtocolVersion(Version serverVersion) =>
        ParallelStreaming(serverVersion) ? 4 : _options.TwoPhase ? 3 : _options.StreamLargeTransactions ? 2 : 1;

    private PgOutputOptions ParserOptions(Version serverVersion) => new(
        ProtocolVersion(serverVersion),
        ParallelStreaming(serverVersion) ? PgOutputStreaming.Parallel : _options.StreamLargeTransactions ? PgOutputStreaming.On : PgOutputStreaming.Off,
        twoPhase: _options.TwoPhase,
        binary: _options.BinaryTupleMode,
        messages: true);

    private IEnumerable<KeyValuePair<string, string?>> StreamingPluginOptions(Version serverVersion)
    {
        if (_options.StreamLargeTransactions)
            yield return new("streaming", ParallelStreaming(serverVersion) ? "parallel" : "on");
        if (_options.TwoPhase)
            yield return new("two_phase", "on");
    }

    /// <summary>A fresh spill store for one replication connection, or null when neither option needs one.</summary>
    private SpillStore? CreateSpillStore(ILogger logger)
    {
        if (!_options.StreamLargeTransactions && !_options.TwoPhase)
            return null;
        return new SpillStore(SpillDirectoryFor(_options), _options.Tables, SpillStatistics, chunkLimits: new BatchLimits(_options.MaxBatchRows, _options.MaxBatchBytes),
            maxBytes: _options.MaxSpillBytes, privateParent: _options.SpillDirectory is null, logger);
    }

    /// <summary>
    /// The slot's own spill directory: named by the slot and a hash of the source server and database, because slot
    /// names are unique per server only and the directory is emptied at every connection. Under the temporary directory
    /// the root is the user's own (<c>synchro-pipeline-spill-&lt;uid&gt;</c>), so users of one machine never share it.
    /// </summary>
    internal static string SpillDirectoryFor(WalPipelineOptions options)
    {
        var root = options.SpillDirectory ?? Path.Combine(Path.GetTempPath(), DefaultSpillRootName);
        var source = new NpgsqlConnectionStringBuilder(options.ConnectionString);
        var identity = $"{source.Host}:{source.Port.ToString(CultureInfo.InvariantCulture)}/{source.Database}/{options.SlotName}";
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..12];
        return Path.Combine(Path.GetFullPath(root), $"{options.SlotName}-{hash}");
    }

    /// <summary>The name of the default spill root under the temporary directory: the user's own where users have ids.</summary>
    private static string DefaultSpillRootName => OperatingSystem.IsWindows()
        ? "synchro-pipeline-spill"
        : "synchro-pipeline-spill-" + UnixFileStatus.EffectiveUserId.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Matches an existing slot's two-phase setting to <see cref="WalPipelineOptions.TwoPhase"/>. A slot created with
    /// two_phase keeps decoding prepared transactions at PREPARE whatever the client asks (PostgreSQL 15 cannot turn it
    /// off), so using it without the option is an error; a slot without it is switched on by the server from the
    /// position the stream starts at, which only needs saying.
    /// </summary>
    private async Task CheckSlotTwoPhaseAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(SlotTwoPhaseSql, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = _options.SlotName });
        if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not bool twoPhase || twoPhase == _options.TwoPhase)
            return;
        if (twoPhase)
        {
            throw new WalPipelineConfigurationException(
                $"Replication slot '{_options.SlotName}' was created with two_phase, so the server sends prepared transactions at PREPARE, "
                + $"but {nameof(WalPipelineOptions.TwoPhase)} is off. Turn {nameof(WalPipelineOptions.TwoPhase)} on, or drop the slot "
                + $"(SELECT pg_drop_replication_slot('{_options.SlotName}')) and let the pipeline recreate it.");
        }
        LogTwoPhaseEnabledOnSlot(_logger, _options.SlotName);
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.TwoPhaseEnabledOnSlot, Level = LogLevel.Information,
        Message = "Replication slot {Slot} was created without two_phase; the server enables two-phase decoding on it from the position this stream starts at. "
            + "Transactions prepared before that arrive whole at their COMMIT PREPARED.")]
    private static partial void LogTwoPhaseEnabledOnSlot(ILogger logger, string slot);
}
