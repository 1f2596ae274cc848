using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// The pipeline needs UTF-8 databases, source and changelog: record and bucket ids, the rows given to bucket functions
/// and kept in <c>sync_rule_failures</c> (JSON), and the text clients read are UTF-8.
/// </summary>
/// <remarks>
/// Why refuse rather than carry other encodings' bytes: <c>SQL_ASCII</c> stores any bytes unchecked and the server
/// passes them on unconverted, so a value could be invalid UTF-8 that neither the changelog's text nor JSON can hold, and
/// it would surface in the stream, where no single change can be set aside (invariant 4 of docs/architecture.md). Other
/// server encodings are converted by the server, but the pipeline would depend on every conversion to and from them
/// (a changelog in LATIN1 cannot hold a bucket id in Greek), and UTF8 has been the default for years. So both
/// databases are checked at start and by <c>check</c>, with the way out in the message.
/// </remarks>
internal static class DatabaseEncoding
{
    /// <summary>The one server encoding the pipeline accepts.</summary>
    public const string Required = "UTF8";

    private const string EncodingSql = "SELECT pg_catalog.current_setting('server_encoding'), pg_catalog.current_database()::text";

    /// <summary>The problem with the encoding of the database <paramref name="connection"/> is open on, or null when it is UTF8.</summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="role">What the database is to the pipeline, for the message: <c>source</c> or <c>changelog</c>.</param>
    /// <param name="ct">Cancels the query.</param>
    public static async Task<string?> ProblemAsync(NpgsqlConnection connection, string role, CancellationToken ct)
    {
        var command = new NpgsqlCommand(EncodingSql, connection);
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                return Problem(reader.GetString(0), reader.GetString(1), role);
            }
        }
    }

    /// <summary>The problem with a database of <paramref name="encoding"/>, or null when it is UTF8.</summary>
    public static string? Problem(string encoding, string database, string role)
    {
        if (string.Equals(encoding, Required, StringComparison.OrdinalIgnoreCase))
            return null;
        var quoted = PgIdentifier.IsValidObjectName(database) ? PgIdentifier.Quote(database) : "the database";
        var why = string.Equals(encoding, "SQL_ASCII", StringComparison.OrdinalIgnoreCase)
            ? "SQL_ASCII stores any bytes unchecked, so values may not be valid UTF-8"
            : $"the changelog's ids, the JSON rows of rule failures and the clients' text are UTF-8, and not every character converts to and from {encoding}";
        return $"The {role} database {quoted} has server encoding {encoding}; the pipeline needs UTF8 ({why}). "
            + $"Create a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0) and move the data into it (pg_dump, then pg_restore into the new database), "
            + $"then point the {role} connection string at it.";
    }
}
