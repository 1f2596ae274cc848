using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline;

// The changelog database at start: one writer (invariant 9, ChangelogLock) and no DDL unless a migration is pending.
public sealed partial class WalPipeline
{
    private ChangelogLock? _changelogLock;

    private ChangelogLock NewChangelogLock() => new(
        _connections, _options.ChangelogSessionString, _options.ChangelogSchemaName, _options.SlotName, _options.LoggerFactory.CreateLogger(LogCategory))
    {
        WaitForLock = _options.WaitForLock,
        Waiting = _metrics.WaitingForLock,
    };

    /// <summary>
    /// Reads what exists of the sidecar tables and migrates only when something is missing, on the changelog lock's session:
    /// a role with DML on the sidecar tables and nothing more runs the pipeline, and the owner runs <c>migrate</c>. Then checks
    /// that the role has that DML (<see cref="ChangelogPrivileges"/>).
    /// </summary>
    /// <exception cref="WalPipelineConfigurationException">The schema is missing, the sidecar tables are in another schema,
    /// a migration is pending and the role may not run it, or the role lacks privileges on the sidecar tables.</exception>
    private async Task MigrateIfPendingAsync(CancellationToken cancellationToken)
    {
        var connection = await _changelogLock!.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await MigrateIfPendingAsync(connection, _options.ChangelogSchemaName, _logger, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc cref="MigrateIfPendingAsync(CancellationToken)"/>
    private static async Task MigrateIfPendingAsync(NpgsqlConnection connection, string schema, ILogger logger, CancellationToken cancellationToken)
    {
        var state = await ChangelogSchema.ReadStateAsync(connection, schema, cancellationToken).ConfigureAwait(false);
        if (state.MigrationPending)
        {
            if (ChangelogStartProblem(state) is { } problem)
                throw new WalPipelineConfigurationException(problem);
            try
            {
                await ChangelogSchema.MigrateAsync(connection, state.Schema, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                throw new WalPipelineConfigurationException(MigrationRefused(state, connection.UserName, e.MessageText), e);
            }
            LogMigrated(logger, state.Schema, string.Join(", ", state.Missing));
        }
        // Before anything is written: a role short of DML on a sidecar table would fail at the first batch instead.
        if (await ChangelogPrivileges.ProblemAsync(connection, state.Schema, cancellationToken).ConfigureAwait(false) is { } privileges)
            throw new WalPipelineConfigurationException(privileges);
    }

    /// <summary>Why a start cannot create what is missing of the sidecar tables itself (shared with <see cref="CheckAsync"/>); null when it can try.</summary>
    internal static string? ChangelogStartProblem(SidecarState state)
    {
        var schema = PgIdentifier.Quote(state.Schema);
        if (!state.SchemaExists)
        {
            return $"The changelog schema {schema} does not exist in the changelog database (it is the first schema of the changelog connection string's Search Path, else public). "
                + $"Create it as the role that owns the sidecar tables (CREATE SCHEMA {schema} AUTHORIZATION <owner>), then run synchro-pipeline migrate as that role, or fix the Search Path.";
        }
        if (state.Empty && state.OtherSchemas.Count > 0)
        {
            var others = string.Join(", ", state.OtherSchemas.Select(PgIdentifier.Quote));
            return $"The changelog schema {schema} holds no sidecar tables, but {others} {(state.OtherSchemas.Count == 1 ? "does" : "do")} (sync_wal_position): "
                + "the pipeline looks for the sidecar tables only in the first schema of the changelog connection string's Search Path (else public), never through a role's or database's search_path setting, "
                + $"so it will not start a second changelog beside them on its own. If {others} holds this pipeline's changelog, put it first in the Search Path of the changelog connection string "
                + $"(Search Path={state.OtherSchemas[0]}); to start a new changelog in {schema}, create its tables with synchro-pipeline migrate first.";
        }
        return null;
    }

    private static string MigrationRefused(SidecarState state, string? role, string reason)
        => $"The sidecar tables in schema {PgIdentifier.Quote(state.Schema)} need a migration (missing: {string.Join(", ", state.Missing)}), "
            + $"and role {(role is null ? "of the changelog connection" : PgIdentifier.Quote(role))} may not change the schema ({reason}). "
            + "Run synchro-pipeline migrate (or ChangelogSchema.EnsureAsync) as the schema's owner, grant the changelog role its privileges on the new tables "
            + "(docs/setup.md, Roles and grants), then start again; the pipeline itself runs no DDL when nothing is missing.";

    [LoggerMessage(EventId = Diagnostics.EventIds.ChangelogMigrated, Level = LogLevel.Information,
        Message = "Migrated the sidecar tables in schema {Schema}: created {Missing}")]
    private static partial void LogMigrated(ILogger logger, string schema, string missing);
}
