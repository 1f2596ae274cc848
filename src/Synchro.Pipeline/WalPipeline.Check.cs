using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline;

public sealed partial class WalPipeline
{

    /// <summary>
    /// Runs the checks <see cref="RunAsync"/> makes at start — server settings (wal_level, a free replication slot and walsender),
    /// the roles' rights (REPLICATION and SELECT on the registered tables for the source role, DML on the sidecar tables for the
    /// changelog role), publication, tables, columns, replica identities, slot, and that the persisted position belongs to the source (<see cref="CheckPositionAsync(WalPipelineOptions, CancellationToken)"/>) —
    /// without creating, migrating or consuming anything. With <see cref="WalPipelineOptions.Failover"/>, also the primary's
    /// <c>synchronized_standby_slots</c> and the slot synchronisation of each standby of <see cref="WalPipelineOptions.FailoverStandbys"/>
    /// or among the hosts of <see cref="WalPipelineOptions.ConnectionString"/> (docs/operations.md, failover slots).
    /// </summary>
    /// <param name="options">The pipeline's options; validated first.</param>
    /// <param name="cancellationToken">Cancels the checks.</param>
    /// <returns>
    /// The warnings, each with its fix: problems the pipeline runs with, such as a registered table the publication
    /// leaves out, a publication that covers the sidecar tables of a changelog in the source database, a child table with no
    /// index on its parent foreign key, a slot it will create at start, sidecar tables it will create at start, or a failover
    /// setting missing on the primary or a standby. Empty when all is set up.
    /// </returns>
    /// <remarks>
    /// Connects to the source database and, when it is another one, to the changelog database (and, when the source is a
    /// hot standby, to its primary); every query is read-only.
    /// With a persisted position, also opens a replication connection to identify the server.
    /// </remarks>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    /// <exception cref="WalPipelineConfigurationException">
    /// The database is not set up for the pipeline (every problem and its fix), or the persisted position does not belong
    /// to the source (what happened and how to recover).
    /// </exception>
    /// <exception cref="NpgsqlException">A database could not be reached.</exception>
    public static async Task<IReadOnlyList<string>> CheckAsync(WalPipelineOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        var warnings = new List<string>();
        var connections = options.Connections;
        var source = connections.DataSource(options.SourceSessionString, PipelineConnectionKind.Source);
        await using (source.ConfigureAwait(false))
        {
            var changelog = connections.DataSource(options.ChangelogSessionString, PipelineConnectionKind.Changelog);
            await using (changelog.ConfigureAwait(false))
            {
                bool slotExists;
                var connection = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    var checks = await CheckSourceAsync(connection, changelog, options, busySendersFail: true, cancellationToken).ConfigureAwait(false);
                    warnings.AddRange(checks.Warnings);
                    slotExists = checks.SlotExists;
                    if (options.Failover)
                        warnings.AddRange(await FailoverChecks.CheckStandbysAsync(connections, connection, options.ConnectionString, options.FailoverStandbys, options.SlotName, cancellationToken).ConfigureAwait(false));
                }

                SidecarState sidecars;
                var changelogConnection = await changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using (changelogConnection.ConfigureAwait(false))
                {
                    await CheckChangelogEncodingAsync(changelogConnection, options, cancellationToken).ConfigureAwait(false);
                    sidecars = await ChangelogSchema.ReadStateAsync(changelogConnection, options.ChangelogSchemaName, cancellationToken).ConfigureAwait(false);
                    if (await ChangelogPrivileges.ProblemAsync(changelogConnection, sidecars.Schema, cancellationToken).ConfigureAwait(false) is { } privileges)
                        throw new WalPipelineConfigurationException(privileges);
                }
                if (sidecars.MigrationPending && ChangelogStartProblem(sidecars) is { } sidecarProblem)
                    throw new WalPipelineConfigurationException(sidecarProblem);
                var found = await CheckPersistedPositionAsync(connections, source, changelog, options.SourceSessionString, options.SlotName, null, identify: false, slotConfirmsOnlyPersisted: !options.DiscardWrites, cancellationToken).ConfigureAwait(false);
                if (found.Problem is { } problem)
                    throw new WalPipelineConfigurationException([problem.Message]) { RefusesPosition = true };
                if (!slotExists)
                {
                    warnings.Add(found.Persisted is { Position: { IsValid: true } earlier }
                        ? $"Replication slot '{options.SlotName}' does not exist, but the changelog holds position {earlier} of an earlier slot of that name: it was dropped. "
                            + "The pipeline creates the slot again at start; changes committed between that position and then are not in the changelog, so clients of the affected buckets must resync."
                            + (options.InitialSnapshot ? " Before streaming, it reloads the bucket edges of the registered tables from the new slot's snapshot (InitialSnapshot)." : "")
                        : $"Replication slot '{options.SlotName}' does not exist yet; the pipeline creates it at start, and the changelog covers changes from then on."
                            + (options.InitialSnapshot ? " Before streaming, it loads the bucket edges of the rows the registered tables hold then, from the slot's snapshot (InitialSnapshot)." : ""));
                }
                if (sidecars.MigrationPending)
                {
                    warnings.Add($"The sidecar tables in schema {PgIdentifier.Quote(sidecars.Schema)} of the changelog database need a migration (missing: {string.Join(", ", sidecars.Missing)}); "
                        + "the pipeline runs it at start when its role may create tables there, otherwise run synchro-pipeline migrate (ChangelogSchema.EnsureAsync) as the schema's owner first.");
                }
            }
        }
        return warnings;
    }

    /// <summary>
    /// The start-up checks of the source database; a missing slot is a problem only when the pipeline may not create it. Reads
    /// <paramref name="changelog"/> only to tell whether it is the source database (see <see cref="CheckSidecarTablesAsync"/>).
    /// No free walsender fails only with <paramref name="busySendersFail"/> (<c>check</c>); a start warns and waits for one.
    /// </summary>
    private static async Task<StartupCheckResult> CheckSourceAsync(NpgsqlConnection connection, NpgsqlDataSource changelog, WalPipelineOptions options, bool busySendersFail, CancellationToken cancellationToken)
    {
        var tables = options.Tables.Select(t => new RegisteredTable(t.Schema, t.Name, t.IdColumns, t.ReferencedColumns)
        {
            ParentForeignKey = t.ParentForeignKeyColumns ?? [],
            Parent = options.Tables.ParentOf(t) is { } parent ? (parent.Schema, parent.Name) : null,
        }).ToList();
        // A standby first: what it cannot do (PostgreSQL 15, a changelog in it) makes the other checks moot.
        List<string> standbyErrors = [], standbyWarnings = [];
        var standby = await StandbySource.CheckAsync(options.Connections, connection, options.ChangelogConnectionString, options.PrimaryConnectionString, standbyErrors, standbyWarnings, cancellationToken).ConfigureAwait(false);
        if (standbyErrors.Count > 0)
            throw new WalPipelineConfigurationException(standbyErrors);
        var checks = await StartupChecks.RunAsync(connection, options.SlotName, options.PublicationName, tables, busySendersFail, cancellationToken).ConfigureAwait(false);
        checks = checks with { Warnings = [.. standbyWarnings, .. checks.Warnings], Standby = standby };
        if (options.BinaryTupleMode)
        {
            List<(string, string, string)> converted = [.. options.Tables.SelectMany(t => BinaryValueText.ConvertedColumns(t).Select(c => (t.Schema, t.Name, c)))];
            await StartupChecks.CheckBinaryTuplesAsync(connection, converted, cancellationToken).ConfigureAwait(false);
        }
        var functionProblems = await SqlFunctionBucketAssigner.CheckAsync(connection, options.Tables, cancellationToken).ConfigureAwait(false);
        if (functionProblems.Count > 0)
            throw new WalPipelineConfigurationException(functionProblems);
        // A valid slot name is [a-z0-9_]+ (Validate), so it is safe inside the quoted literal of the suggested fix.
        if (options.Failover && await FailoverChecks.CheckSlotAsync(connection, options.SlotName, cancellationToken).ConfigureAwait(false) is { Count: > 0 } failoverProblems)
            throw new WalPipelineConfigurationException(failoverProblems);
        if (!checks.SlotExists && !options.CreateSlotIfMissing)
            throw new WalPipelineConfigurationException($"Replication slot '{options.SlotName}' does not exist and {nameof(WalPipelineOptions.CreateSlotIfMissing)} is off; create it (SELECT pg_create_logical_replication_slot('{options.SlotName}', 'pgoutput')) or turn the option on.");
        if (await CheckSidecarTablesAsync(connection, changelog, options, tables, cancellationToken).ConfigureAwait(false) is { } published)
            checks = checks with { Warnings = [.. checks.Warnings, published] };
        if (options.FilterOriginsOnServer && connection.PostgreSqlVersion.Major < OriginOptionSinceVersion)
        {
            checks = checks with { Warnings = [.. checks.Warnings, $"{nameof(WalPipelineOptions.FilterOriginsOnServer)} has no effect on PostgreSQL {connection.PostgreSqlVersion.Major}: "
                + "pgoutput's origin option needs 16 or later. The server sends the pipeline's own changelog writes, and the pipeline leaves them out itself."] };
        }
        return checks;
    }

    /// <summary>
    /// A publication that covers the sidecar tables costs only when the changelog is written to the source database: then the
    /// walsender decodes every changelog write and sends it back. That is the case without a changelog connection string, or
    /// when it reaches the same database of the same cluster, however it is written; a changelog elsewhere is never covered.
    /// </summary>
    /// <remarks>
    /// Nor does it cost when the server leaves the pipeline's origin-tagged writes out before decoding them
    /// (<see cref="WalPipelineOptions.FilterOriginsOnServer"/>, 16+); that a write could not be tagged is event 3005's to say.
    /// </remarks>
    /// <returns>The warning, or null.</returns>
    private static async Task<string?> CheckSidecarTablesAsync(
        NpgsqlConnection source,
        NpgsqlDataSource changelog,
        WalPipelineOptions options,
        List<RegisteredTable> tables,
        CancellationToken cancellationToken)
    {
        var originFilter = options.TagOwnWrites && source.PostgreSqlVersion.Major >= OriginOptionSinceVersion;
        if (originFilter && options.FilterOriginsOnServer)
            return null;
        if (options.ChangelogConnectionString is null)
            return await StartupChecks.CheckSidecarTablesAsync(source, options.ChangelogSchemaName, options.PublicationName, ChangelogSchema.TableNames, tables, originFilter, cancellationToken).ConfigureAwait(false);

        var connection = await changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var sourceIdentity = await DatabaseIdentity.ReadAsync(source, cancellationToken).ConfigureAwait(false);
            if (await DatabaseIdentity.ReadAsync(connection, cancellationToken).ConfigureAwait(false) != sourceIdentity)
                return null;
            return await StartupChecks.CheckSidecarTablesAsync(connection, options.ChangelogSchemaName, options.PublicationName, ChangelogSchema.TableNames, tables, originFilter, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A changelog database of another encoding than UTF8 is refused; the source's own check covers a changelog in the source database.</summary>
    private static async Task CheckChangelogEncodingAsync(NpgsqlConnection connection, WalPipelineOptions options, CancellationToken cancellationToken)
    {
        if (options.ChangelogConnectionString is null)
            return;
        if (await DatabaseEncoding.ProblemAsync(connection, "changelog", cancellationToken).ConfigureAwait(false) is { } problem)
            throw new WalPipelineConfigurationException(problem);
    }
}
