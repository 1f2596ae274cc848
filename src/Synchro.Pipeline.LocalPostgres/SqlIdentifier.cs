namespace Synchro.Pipeline.LocalPostgres;

internal static class SqlIdentifier
{
    /// <summary>Quotes <paramref name="name"/> as a PostgreSQL identifier; embedded quotes are doubled.</summary>
    public static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
