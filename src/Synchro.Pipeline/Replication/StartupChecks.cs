using System.Data;
using System.Globalization;
using System.Text;
using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// Checks the source database before the pipeline consumes its slot, so that configuration which would
/// lose, misattribute or block changes fails at start with what to change (design invariant 4 of docs/architecture.md).
/// </summary>
/// <remarks>
/// Every query is parameterised. Names reach SQL text only in the suggested fixes, which are shown, never
/// executed: quoted through <see cref="PgIdentifier.Quote"/>, or, for slot names that passed
/// <see cref="PgIdentifier.IsValid"/>, inside a string literal.
/// </remarks>
internal static partial class StartupChecks
{
    /// <summary>Runs every check and reports all problems at once.</summary>
    /// <param name="connection">A normal (non-replication) connection to the source database; opened if closed.</param>
    /// <param name="slotName">The logical replication slot the pipeline consumes.</param>
    /// <param name="publicationName">The publication the slot's stream is filtered by.</param>
    /// <param name="tables">The registered tables.</param>
    /// <param name="busySendersFail">Whether no free walsender is an error (<c>check</c>: the pipeline could not stream now) or a
    /// warning (a start, which then waits for one as for a server out of connections).</param>
    /// <param name="ct">Cancels the checks.</param>
    /// <returns>The warnings, and whether the slot exists.</returns>
    /// <exception cref="WalPipelineConfigurationException">One or more errors; the exception lists all of them.</exception>
    public static async Task<StartupCheckResult> RunAsync(
        NpgsqlConnection connection,
        string slotName,
        string publicationName,
        IReadOnlyList<RegisteredTable> tables,
        bool busySendersFail,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tables);
        if (connection.State != ConnectionState.Open)
            await connection.OpenAsync(ct).ConfigureAwait(false);

        var errors = new List<string>();
        var warnings = new List<string>();

        var slotValid = PgIdentifier.IsValid(slotName);
        if (!slotValid)
            errors.Add(InvalidSlotName(slotName));

        var publicationValid = PgIdentifier.IsValidObjectName(publicationName);
        if (!publicationValid)
        {
            errors.Add($"Publication name '{Display(publicationName)}' is invalid: it must be 1 to {PgIdentifier.MaxLength} bytes of UTF-8 "
                + "without NUL characters; configure the name of an existing publication.");
        }

        var checkable = CheckTableNames(tables, errors);

        var server = await ReadServerAsync(connection, slotName, ct).ConfigureAwait(false);
        var database = server.Database;
        CheckServer(server, slotValid, busySendersFail, errors, warnings);
        if (DatabaseEncoding.Problem(server.Encoding, database, "source") is { } encodingProblem)
            errors.Add(encodingProblem);

        var existing = await CheckTablesAsync(connection, database, checkable, errors, ct).ConfigureAwait(false);
        await CheckGrantsAsync(connection, server.Role, existing, errors, ct).ConfigureAwait(false);

        if (publicationValid)
            await CheckPublicationAsync(connection, database, publicationName, checkable, existing, errors, warnings, ct).ConfigureAwait(false);

        await CheckParentKeyIndexesAsync(connection, existing, warnings, ct).ConfigureAwait(false);

        var slotExists = slotValid && await CheckSlotAsync(connection, database, slotName, errors, warnings, ct).ConfigureAwait(false);

        if (errors.Count > 0)
            throw new WalPipelineConfigurationException(errors);
        return new StartupCheckResult(warnings, slotExists);
    }

    /// <summary>The error for a slot name that fails <see cref="PgIdentifier.IsValid"/>.</summary>
    internal static string InvalidSlotName(string? slotName) =>
        $"Replication slot name '{Display(slotName)}' is invalid: a slot name is 1 to {PgIdentifier.MaxLength} characters, each a "
        + "lower-case letter (a-z), a digit or an underscore; configure a name such as 'synchro_slot'.";

    /// <summary>An invalid name as shown in a message: control characters escaped, so one error stays one line.</summary>
    private static string Display(string? name)
    {
        if (name is null)
            return "(null)";
        if (!name.Any(char.IsControl))
            return name;
        var text = new StringBuilder(name.Length + 8);
        foreach (var c in name)
        {
            if (char.IsControl(c))
                text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            else
                text.Append(c);
        }

        return text.ToString();
    }

    private static string QuotedList(IEnumerable<string> quotedNames) => string.Join(", ", quotedNames);
}
