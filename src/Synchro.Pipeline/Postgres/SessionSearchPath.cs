using System.Text;
using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// The <c>search_path</c> of every session the pipeline opens, pinned in the connection string (sent at connect, so it
/// overrides the role's and the database's settings and survives the pool's reset), and the changelog schema it implies.
/// </summary>
/// <remarks>
/// <para>
/// Changelog sessions run with <c>"&lt;changelog schema&gt;", pg_temp</c>; source sessions with the source connection
/// string's own <c>Search Path</c> (default <c>public</c>) followed by <c>pg_temp</c>. <c>pg_catalog</c> is not listed,
/// so the server searches it first: no object planted in another schema can stand in for a system function, operator or
/// type, and a sidecar table name can only mean the one in the changelog schema (only superusers create objects in
/// <c>pg_catalog</c>). <c>pg_temp</c> last keeps a temporary table from standing in for a table of the path.
/// </para>
/// <para>
/// The changelog schema is the first schema the changelog connection string's <c>Search Path</c> names, else
/// <c>public</c>: the configuration decides where the sidecar tables are, never a role's or a database's
/// <c>search_path</c> setting, nor a schema named like the role (<c>"$user"</c>).
/// </para>
/// </remarks>
internal static class SessionSearchPath
{
    /// <summary>The schema of the sidecar tables and of unqualified registered names when the connection string names none.</summary>
    public const string DefaultSchema = "public";

    /// <summary>The temporary schema, listed last.</summary>
    private const string TemporarySchema = "pg_temp";

    /// <summary><paramref name="connectionString"/> with its sessions pinned to the source search path.</summary>
    public static string Source(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.SearchPath = string.IsNullOrWhiteSpace(builder.SearchPath)
            ? $"{DefaultSchema}, {TemporarySchema}"
            : $"{builder.SearchPath}, {TemporarySchema}";
        return builder.ConnectionString;
    }

    /// <summary><paramref name="connectionString"/> with its sessions pinned to <c>"&lt;changelog schema&gt;", pg_temp</c>.</summary>
    /// <exception cref="ArgumentException">The connection string's <c>Search Path</c> does not name a schema first (<see cref="Problem"/>).</exception>
    public static string Changelog(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.SearchPath = $"{PgIdentifier.Quote(ChangelogSchema(builder))}, {TemporarySchema}";
        return builder.ConnectionString;
    }

    /// <summary>The schema of the sidecar tables of the changelog at <paramref name="connectionString"/>.</summary>
    /// <exception cref="ArgumentException">The connection string's <c>Search Path</c> does not name a schema first (<see cref="Problem"/>).</exception>
    public static string ChangelogSchema(string connectionString) => ChangelogSchema(new NpgsqlConnectionStringBuilder(connectionString));

    private static string ChangelogSchema(NpgsqlConnectionStringBuilder builder)
    {
        if (Problem(builder.SearchPath) is { } problem)
            throw new ArgumentException(problem);
        return FirstSchema(builder.SearchPath) ?? DefaultSchema;
    }

    /// <summary>Why <paramref name="searchPath"/>, a connection string's <c>Search Path</c>, cannot name the changelog schema; null when it can.</summary>
    public static string? Problem(string? searchPath)
    {
        if (string.IsNullOrWhiteSpace(searchPath))
            return null;
        if (!TryFirst(searchPath, out var first, out var quoted))
            return $"its Search Path '{Printable(searchPath)}' is not a list of schema names";
        if (!quoted && first == "$user")
            return "its Search Path starts with $user, a schema named like the role: name the changelog schema itself (Search Path=synchro)";
        if (!PgIdentifier.IsValidObjectName(first))
            return $"its Search Path starts with '{Printable(first)}', which is not a schema name (1 to 63 bytes of UTF-8, no NUL)";
        return null;
    }

    /// <summary>The first schema of a <c>search_path</c> value as the server reads it: a quoted name as written, an unquoted one in lower case.</summary>
    private static string? FirstSchema(string? searchPath)
        => !string.IsNullOrWhiteSpace(searchPath) && TryFirst(searchPath, out var first, out _) ? first : null;

    // The server's SplitIdentifierString for the first item: blanks around it, "" inside a quoted name, an unquoted name folded to lower case.
    private static bool TryFirst(string list, out string first, out bool quoted)
    {
        first = "";
        var text = list.AsSpan().Trim();
        quoted = text.StartsWith("\"");
        if (quoted)
        {
            var name = new StringBuilder();
            var i = 1;
            while (true)
            {
                var end = text[i..].IndexOf('"');
                if (end < 0)
                    return false;
                name.Append(text.Slice(i, end));
                i += end + 1;
                if (i < text.Length && text[i] == '"')
                {
                    name.Append('"');
                    i++;
                    continue;
                }
                break;
            }
            var rest = text[i..].TrimStart();
            if (!rest.IsEmpty && rest[0] != ',')
                return false;
            first = name.ToString();
            return first.Length > 0;
        }
        var comma = text.IndexOf(',');
        var item = (comma < 0 ? text : text[..comma]).Trim();
        if (item.IsEmpty || item.ContainsAny(" \t\r\n\""))
            return false;
        // The server folds only ASCII letters of an unquoted name in a UTF8 database.
        first = string.Create(item.Length, item.ToString(), static (chars, name) =>
        {
            for (var i = 0; i < name.Length; i++)
                chars[i] = char.IsAsciiLetterUpper(name[i]) ? (char)(name[i] | 0x20) : name[i];
        });
        return true;
    }

    private static string Printable(string text) => new(text.Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
