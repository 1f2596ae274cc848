using System.Text;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>Formats a program and its arguments as one line a POSIX shell runs unchanged.</summary>
internal static class ShellCommand
{
    public static string Format((string FileName, IReadOnlyList<string> Arguments) command)
    {
        var builder = new StringBuilder(Quote(command.FileName));
        foreach (var argument in command.Arguments)
        {
            builder.Append(' ').Append(Quote(argument));
        }

        return builder.ToString();
    }

    /// <summary>Words of safe characters stay bare; anything else is single-quoted, with each embedded quote written as <c>'\''</c>.</summary>
    private static string Quote(string word) =>
        word.Length > 0 && word.All(IsSafe)
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static bool IsSafe(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '-' or '_' or '=' or ':' or ',' or '+' or '@';
}
