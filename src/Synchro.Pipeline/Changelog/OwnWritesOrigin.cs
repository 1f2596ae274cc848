using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The replication origin the pipeline's changelog sessions write under (invariant 10 of docs/architecture.md), so that
/// decoding the source leaves those writes out: the server itself with pgoutput's <c>origin 'none'</c> (PostgreSQL 16+),
/// the decoder by name everywhere.
/// </summary>
/// <remarks>
/// Only where the changelog is the source database: decoding reads one database, so writes elsewhere never come back.
/// One origin per session kind and slot, because an origin is active in one session at a time. Not having one is never
/// fatal: a transaction that carries nothing for a registered table commits nothing of its own anyway (the decoder
/// drops it), so without the origin the walsender only does the work of decoding and sending it.
/// </remarks>
internal static partial class OwnWritesOrigin
{
    private const string Prefix = "synchro_pipeline.";

    private const string CreateSql = """
        SELECT pg_catalog.pg_replication_origin_create(@name) WHERE pg_catalog.pg_replication_origin_oid(@name) IS NULL
        """;

    private const string SetUpSql = "SELECT pg_catalog.pg_replication_origin_session_setup(@name)";
    private const string ResetSql = "SELECT pg_catalog.pg_replication_origin_session_reset()";

    /// <summary>The session kinds that write the changelog in bulk (a replay of rule failures writes little and goes untagged).</summary>
    internal enum Session
    {
        Writer,
        Snapshot,
    }

    /// <summary>The origin of <paramref name="session"/> for <paramref name="slotName"/> (a slot name is at most 63 bytes; an origin name may have 512).</summary>
    public static string Name(string slotName, Session session) => session switch
    {
        Session.Writer => Prefix + slotName,
        _ => $"{Prefix}{slotName}.{session.ToString().ToLowerInvariant()}",
    };

    /// <summary>Every origin the pipeline of <paramref name="slotName"/> writes under.</summary>
    public static IEnumerable<string> Names(string slotName) => Enum.GetValues<Session>().Select(s => Name(slotName, s));

    /// <summary>
    /// Sets <paramref name="changelog"/>'s session up to write under the origin of <paramref name="session"/>, when it is
    /// the database <paramref name="source"/> is connected to; returns whether it did. A refusal (privileges, the origin
    /// busy in another session) is logged once and leaves the session as it was.
    /// </summary>
    public static async Task<bool> TrySetUpAsync(NpgsqlConnection changelog, NpgsqlConnection source, string slotName, Session session, ILogger logger, CancellationToken ct)
    {
        // Same cluster (the system identifier is the same on copies, so the database OID is compared too) and same database.
        if (!ReferenceEquals(changelog, source) && await DatabaseIdentity.ReadAsync(changelog, ct).ConfigureAwait(false) != await DatabaseIdentity.ReadAsync(source, ct).ConfigureAwait(false))
            return false;
        var name = Name(slotName, session);
        try
        {
            try
            {
                await ExecuteAsync(changelog, CreateSql, name, ct).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                // Created at the same moment by another session of this pipeline.
            }
            await ExecuteAsync(changelog, SetUpSql, name, ct).ConfigureAwait(false);
            return true;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.ObjectInUse
            or PostgresErrorCodes.ConfigurationLimitExceeded or PostgresErrorCodes.ObjectNotInPrerequisiteState)
        {
            LogNotTagged(logger, name, changelog.UserName ?? "the changelog role", e.MessageText);
            return false;
        }
    }

    /// <summary>Releases the origin before the connection goes back to the pool; best effort (a broken session releases it by ending).</summary>
    public static async Task ResetAsync(NpgsqlConnection changelog)
    {
        if (changelog.State != System.Data.ConnectionState.Open)
            return;
        try
        {
            await using var command = new NpgsqlCommand(ResetSql, changelog);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // The session is gone or unusable: the server released the origin with it.
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, string name, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("name", NpgsqlDbType.Text) { TypedValue = name });
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = EventIds.OwnWritesNotTagged, Level = LogLevel.Warning,
        Message = "The changelog writes in the source database could not be marked with the replication origin {Origin} ({Reason}). "
            + "They are still never written back into the changelog, but the walsender decodes and sends every one of them. As a superuser: "
            + "GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create, pg_catalog.pg_replication_origin_oid, "
            + "pg_catalog.pg_replication_origin_session_setup, pg_catalog.pg_replication_origin_session_reset TO {Role}; "
            + "or set TagOwnWrites to false to stop trying")]
    private static partial void LogNotTagged(ILogger logger, string origin, string role, string reason);
}
