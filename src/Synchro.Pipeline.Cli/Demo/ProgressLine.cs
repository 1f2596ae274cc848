using System.Diagnostics;

namespace Synchro.Pipeline.Cli.Demo;

/// <summary>
/// A progress line on standard output. On a terminal it is redrawn in place (<c>\r</c>, then erase to the
/// end of the line), cut to the window width so it never wraps; when output is redirected it is written as
/// plain lines, at most one per <see cref="PlainInterval"/>, so a log file gets a readable trace.
/// </summary>
internal sealed class ProgressLine
{
    /// <summary>Redirected output gets a line this often: enough to follow a run, few enough to read.</summary>
    public static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);

    private const string EraseToEndOfLine = "\u001b[K";

    private readonly TextWriter _output;
    private readonly bool _interactive;
    private long _lastPlainTimestamp;

    // Invariant: true exactly while a terminal line is drawn without its newline.
    private bool _open;

    public ProgressLine(TextWriter output, bool interactive)
    {
        _output = output;
        _interactive = interactive;
    }

    /// <summary>Redraws the line; when redirected, writes it if <paramref name="force"/> or the interval has passed.</summary>
    public void Update(string text, bool force = false)
    {
        if (_interactive)
        {
            _output.Write("\r" + Fit(text) + EraseToEndOfLine);
            _open = true;
            return;
        }

        if (force || _lastPlainTimestamp == 0 || Stopwatch.GetElapsedTime(_lastPlainTimestamp) >= PlainInterval)
        {
            _output.WriteLine(text);
            _lastPlainTimestamp = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Writes a line of its own below the progress line.</summary>
    public void WriteLine(string text)
    {
        End();
        _output.WriteLine(text);
    }

    /// <summary>Ends a drawn line so the next output starts on a line of its own.</summary>
    public void End()
    {
        if (_open)
        {
            _output.WriteLine();
            _open = false;
        }
    }

    private static string Fit(string text)
    {
        int width;
        try
        {
            width = Console.WindowWidth;
        }
        catch (IOException)
        {
            return text;
        }

        // The last column is left free: writing into it makes some terminals wrap.
        return width > 1 && text.Length >= width ? text[..(width - 1)] : text;
    }
}
