using System.Text.RegularExpressions;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.Internal;
using Npgsql.Replication.PgOutput;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// A logical slot just created over a replication connection with an exported snapshot: the snapshot shows the
/// database exactly as of the slot's <see cref="ConsistentPoint"/> — every transaction committed before it, none after.
/// </summary>
/// <remarks>
/// Lifetime: the server keeps the exported snapshot only while the replication connection that created the slot stays
/// open and runs no other command, so this holds that connection, idle, until disposed — after the snapshot load.
/// </remarks>
internal sealed partial class ExportedSnapshotSlot : IAsyncDisposable
{
    private readonly LogicalReplicationConnection _connection;

    private ExportedSnapshotSlot(LogicalReplicationConnection connection, string snapshotName, Lsn consistentPoint)
    {
        _connection = connection;
        SnapshotName = snapshotName;
        ConsistentPoint = consistentPoint;
    }

    /// <summary>The exported snapshot's name, checked to be of the server's form (<see cref="IsSnapshotName"/>).</summary>
    public string SnapshotName { get; }

    /// <summary>Where the slot's stream starts: the first transaction it decodes commits after this.</summary>
    public Lsn ConsistentPoint { get; }

    /// <summary>
    /// Creates the permanent pgoutput slot <paramref name="slotName"/> with <c>CREATE_REPLICATION_SLOT … (SNAPSHOT 'export')</c>.
    /// </summary>
    /// <param name="connections">Where the replication connection comes from.</param>
    /// <param name="connectionString">A normal connection string of the source database (Npgsql adds the replication mode).</param>
    /// <param name="slotName">The slot name; must pass <see cref="PgIdentifier.IsValid"/>.</param>
    /// <param name="twoPhase">Create the slot with two-phase decoding (PostgreSQL 15's <c>TWO_PHASE</c> option).</param>
    /// <param name="failover">Create a failover slot (PostgreSQL 17's <c>FAILOVER</c> option).</param>
    /// <param name="ct">Cancels the creation.</param>
    /// <remarks>Like any logical slot creation, waits for the transactions running at that moment to finish.</remarks>
    /// <exception cref="PostgresException">The slot exists already (SqlState 42710), or the server refused the command.</exception>
    public static async Task<ExportedSnapshotSlot> CreateAsync(PostgresConnections connections, string connectionString, string slotName, bool twoPhase, bool failover, CancellationToken ct)
    {
        if (!PgIdentifier.IsValid(slotName))
            throw new WalPipelineConfigurationException(StartupChecks.InvalidSlotName(slotName));
        var connection = await connections.ReplicationAsync(connectionString, ct).ConfigureAwait(false);
        try
        {
            await connection.Open(ct).ConfigureAwait(false);
            var (snapshotName, consistentPoint) = failover
                ? await CreateFailoverAsync(connection, slotName, twoPhase, ct).ConfigureAwait(false)
                : await CreateAsync(connection, slotName, twoPhase, ct).ConfigureAwait(false);
            // The name goes into SET TRANSACTION SNAPSHOT, which takes no parameters: only the server's own form is accepted.
            if (snapshotName is not { } name || !IsSnapshotName(name))
                throw new WalPipelineException($"Replication slot '{slotName}' was created but the server exported no usable snapshot ('{snapshotName}'); drop the slot and restart the pipeline.");
            return new ExportedSnapshotSlot(connection, name, consistentPoint);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<(string? SnapshotName, Lsn ConsistentPoint)> CreateAsync(LogicalReplicationConnection connection, string slotName, bool twoPhase, CancellationToken ct)
    {
        var slot = await connection.CreatePgOutputReplicationSlot(
            slotName, temporarySlot: false, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.Export, twoPhase: twoPhase, cancellationToken: ct).ConfigureAwait(false);
        return (slot.SnapshotName, slot.ConsistentPoint);
    }

    /// <summary>
    /// <c>CREATE_REPLICATION_SLOT name LOGICAL pgoutput (SNAPSHOT 'export', FAILOVER[, TWO_PHASE])</c>: Npgsql 10 writes only
    /// the legacy options, which have no FAILOVER, and writes the plugin name as given, so the option list (PostgreSQL 15+)
    /// follows the plugin's name there. Invariant: <paramref name="slotName"/> passed <see cref="PgIdentifier.IsValid"/>.
    /// </summary>
    private static async Task<(string? SnapshotName, Lsn ConsistentPoint)> CreateFailoverAsync(LogicalReplicationConnection connection, string slotName, bool twoPhase, CancellationToken ct)
    {
        var plugin = $"{ReplicationSlots.Plugin} (SNAPSHOT 'export', FAILOVER{(twoPhase ? ", TWO_PHASE" : "")})";
        var options = await connection.CreateLogicalReplicationSlot(slotName, plugin, isTemporary: false, slotSnapshotInitMode: null, twoPhase: false, ct).ConfigureAwait(false);
        var slot = new PgOutputReplicationSlot(options);
        return (slot.SnapshotName, slot.ConsistentPoint);
    }

    /// <summary>Whether <paramref name="name"/> has the form of an exported snapshot name: hexadecimal groups joined by dashes (<c>00000003-0000001B-1</c>).</summary>
    internal static bool IsSnapshotName(string name) => name.Length <= 64 && SnapshotNamePattern().IsMatch(name);

    /// <summary>Closes the replication connection; the exported snapshot ends with it.</summary>
    public ValueTask DisposeAsync() => _connection.DisposeAsync();

    [GeneratedRegex(@"\A[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+\z", RegexOptions.CultureInvariant)]
    private static partial Regex SnapshotNamePattern();
}
