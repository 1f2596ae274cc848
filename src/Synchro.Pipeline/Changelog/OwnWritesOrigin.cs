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

    // An origin keeps one of the server's progress slots (max_replication_slots; 18+: max_active_replication_origins) until it is dropped.
    private const string DropSql = "SELECT pg_catalog.pg_replication_origin_drop(@name)";

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
    /// the database <paramref name="source"/> is connected to; returns the origin's name, or null when it did not. A refusal
    /// (privileges, the origin busy in another session, no free progress slot) is logged and leaves the connection open,
    /// without an origin, and without session settings: set them up after this.
    /// </summary>
    public static async Task<string?> TrySetUpAsync(NpgsqlConnection changelog, NpgsqlConnection source, string slotName, Session session, ILogger logger, CancellationToken ct)
    {
        // Same cluster (the system identifier is the same on copies, so the database OID is compared too) and same database.
        if (!ReferenceEquals(changelog, source) && await DatabaseIdentity.ReadAsync(changelog, ct).ConfigureAwait(false) != await DatabaseIdentity.ReadAsync(source, ct).ConfigureAwait(false))
            return null;
        var name = Name(slotName, session);
        var serverMajor = changelog.PostgreSqlVersion.Major;
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
            return name;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.ObjectInUse
            or PostgresErrorCodes.ConfigurationLimitExceeded or PostgresErrorCodes.ObjectNotInPrerequisiteState)
        {
            LogNotTagged(logger, name, e.MessageText, Advice(e.SqlState, changelog.UserName, serverMajor));
            // Npgsql closes the connection after some of these (53400): the caller goes on with it either way.
            if (changelog.State != System.Data.ConnectionState.Open)
            {
                await changelog.CloseAsync().ConfigureAwait(false);
                await changelog.OpenAsync(ct).ConfigureAwait(false);
            }
            await TryDropAsync(changelog, name).ConfigureAwait(false);
            return null;
        }
    }

    private static string Advice(string sqlState, string? role, int serverMajor) => sqlState switch
    {
        PostgresErrorCodes.InsufficientPrivilege => "As a superuser: GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create, pg_catalog.pg_replication_origin_oid, "
            + "pg_catalog.pg_replication_origin_drop, pg_catalog.pg_replication_origin_session_setup, pg_catalog.pg_replication_origin_session_reset TO "
            + (role is null ? "the changelog role" : Postgres.PgIdentifier.Quote(role)) + ";",
        PostgresErrorCodes.ConfigurationLimitExceeded => $"Every origin progress slot is taken (one per origin ever used and not dropped, {ProgressSlotSetting(serverMajor)} in all): "
            + $"drop the origins of pipelines and subscriptions that no longer run (SELECT * FROM pg_replication_origin; pg_replication_origin_drop), or raise {ProgressSlotSetting(serverMajor)}.",
        _ => "Another session holds it: a pipeline of the same slot still stopping, or one writing the same changelog; it is taken again at the next reconnect.",
    } + " Or set TagOwnWrites to false to stop trying.";

    /// <summary>The setting that sizes the origins' progress slots: its own since PostgreSQL 18 (default 10), max_replication_slots before.</summary>
    internal static string ProgressSlotSetting(int serverMajor) => serverMajor >= 18 ? "max_active_replication_origins" : "max_replication_slots";

    /// <summary>
    /// Releases the origin <paramref name="name"/> before the connection goes back to the pool, and drops it, which frees its
    /// progress slot. Best effort: a broken session releases the origin by ending, and an origin left behind is reused by
    /// the next run of the same slot.
    /// </summary>
    public static async Task ReleaseAsync(NpgsqlConnection changelog, string name)
    {
        if (changelog.State != System.Data.ConnectionState.Open)
            return;
        try
        {
            await using (var reset = new NpgsqlCommand(ResetSql, changelog))
                await reset.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // The session is gone or unusable: the server released the origin with it.
            return;
        }
        await TryDropAsync(changelog, name).ConfigureAwait(false);
    }

    /// <summary>Drops <paramref name="name"/> unless another session holds it or the role may not: best effort.</summary>
    private static async Task TryDropAsync(NpgsqlConnection changelog, string name)
    {
        try
        {
            await ExecuteAsync(changelog, DropSql, name, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // In use elsewhere, already gone, or not ours to drop: an origin left behind is reused by the next run of the slot.
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
            + "They are still never written back into the changelog, but the walsender decodes and sends every one of them. {Advice}")]
    private static partial void LogNotTagged(ILogger logger, string origin, string reason, string advice);
}
