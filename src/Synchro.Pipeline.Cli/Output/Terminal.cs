using System.Text;

namespace Synchro.Pipeline.Cli.Output;

/// <summary>
/// One output stream and how to write to it: colours and wrapping only on a terminal, never when the stream is
/// redirected, <c>NO_COLOR</c> is set (no-color.org) or <c>TERM=dumb</c>; redirected output is plain lines.
/// </summary>
internal sealed class Terminal
{
    // Assumed width of a terminal that does not report one.
    private const int FallbackWidth = 100;

    // Narrower than this, wrapping makes things worse.
    private const int MinimumWidth = 40;

    private Terminal(TextWriter writer, bool redirected)
    {
        Writer = writer;
        IsInteractive = !redirected;
        UseColor = IsInteractive && ColorsAllowed();
        Width = IsInteractive ? TerminalWidth() : int.MaxValue;
    }

    /// <summary>Standard output: what a command reports.</summary>
    public static Terminal Out { get; } = new(Console.Out, Console.IsOutputRedirected);

    /// <summary>Standard error: logs and errors.</summary>
    public static Terminal Error { get; } = new(Console.Error, Console.IsErrorRedirected);

    public TextWriter Writer { get; }

    /// <summary>Whether a person is probably reading: the stream is a terminal.</summary>
    public bool IsInteractive { get; }

    public bool UseColor { get; }

    /// <summary>Columns to wrap at; unbounded when redirected.</summary>
    public int Width { get; }

    /// <summary><paramref name="text"/> in the colour of <paramref name="tone"/>, or unchanged without colours.</summary>
    public string Paint(string text, Tone tone)
    {
        if (!UseColor || tone == Tone.Plain)
            return text;
        var code = tone switch
        {
            Tone.Good => "32",
            Tone.Warning => "33",
            Tone.Bad => "31",
            Tone.Dim => "90",
            _ => "1",
        };
        return $"\u001b[{code}m{text}\u001b[0m";
    }

    public void WriteLine(string text = "") => Writer.WriteLine(text);

    /// <summary>Whether output can be drawn again in place: a terminal that understands cursor movement (not <c>TERM=dumb</c>).</summary>
    public bool CanRedraw => IsInteractive && !IsDumb();

    /// <summary>Clears the screen and moves the cursor to its top left, so what follows replaces what was drawn; nothing unless <see cref="CanRedraw"/>.</summary>
    public void ClearScreen()
    {
        if (CanRedraw)
            Writer.Write("\u001b[H\u001b[2J");
    }

    /// <summary>
    /// Writes <paramref name="text"/> after <paramref name="prefix"/>, wrapped at word boundaries to the terminal's
    /// width with continuation lines indented by <paramref name="indent"/> columns; one line when redirected.
    /// </summary>
    public void WriteWrapped(string prefix, string text, int indent)
    {
        var visiblePrefix = VisibleLength(prefix);
        if (Width == int.MaxValue || visiblePrefix + text.Length <= Width)
        {
            Writer.WriteLine(prefix + text);
            return;
        }

        var line = new StringBuilder(prefix);
        var column = visiblePrefix;
        var lineStart = true;
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!lineStart && column + 1 + word.Length > Width)
            {
                Writer.WriteLine(line.ToString());
                line.Clear().Append(' ', indent);
                column = indent;
                lineStart = true;
            }
            if (!lineStart)
            {
                line.Append(' ');
                column++;
            }
            line.Append(word);
            column += word.Length;
            lineStart = false;
        }
        Writer.WriteLine(line.ToString());
    }

    /// <summary>Columns <paramref name="text"/> takes on screen: its length without colour escape sequences.</summary>
    private static int VisibleLength(string text)
    {
        var length = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\u001b')
            {
                while (i < text.Length && text[i] != 'm')
                    i++;
                continue;
            }
            length++;
        }
        return length;
    }

    private static bool ColorsAllowed() => string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")) && !IsDumb();

    private static bool IsDumb() => string.Equals(Environment.GetEnvironmentVariable("TERM"), "dumb", StringComparison.Ordinal);

    private static int TerminalWidth()
    {
        try
        {
            var width = Console.WindowWidth;
            return width <= 0 ? FallbackWidth : Math.Max(width, MinimumWidth);
        }
        catch (IOException)
        {
            return FallbackWidth;
        }
    }
}
