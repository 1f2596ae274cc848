using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Registry;

/// <summary>Validation of a configured SQL bucket function name: <c>name</c> or <c>schema.name</c>, each part a plain SQL identifier.</summary>
/// <remarks>
/// The name is never spliced into SQL as given: it is resolved through <c>to_regprocedure</c> (a parameter), and the
/// queries that call it use the schema and name the catalog returned, quoted.
/// </remarks>
internal static class BucketFunctionName
{
    /// <summary>The argument types every bucket function takes.</summary>
    public const string Arguments = "text, text, jsonb, jsonb";

    /// <summary>Whether each part is a letter or underscore followed by letters, digits, underscores or dollar signs (at most 63), with at most one dot.</summary>
    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name))
            return false;
        var parts = name.Split('.');
        return parts.Length <= 2 && parts.All(IsIdentifier);

        static bool IsIdentifier(string part) =>
            part.Length is > 0 and <= PgIdentifier.MaxLength
            && (char.IsAsciiLetter(part[0]) || part[0] == '_')
            && part.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '$');
    }

    /// <summary>Why <paramref name="name"/> is invalid, for a configuration problem.</summary>
    public static string Describe(string name) =>
        $"'{new string(name.Select(c => char.IsControl(c) ? '?' : c).ToArray())}' is not a function name; use name or schema.name, each part a letter or underscore "
        + $"followed by letters, digits and underscores (at most {PgIdentifier.MaxLength})";

    /// <summary>The <c>regprocedure</c> text the server resolves: <c>name(text, text, jsonb, jsonb)</c>.</summary>
    public static string Signature(string name) => $"{name}({Arguments})";
}
