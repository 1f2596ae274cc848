using System.Globalization;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// Layout of one throwaway cluster: a private temporary root holding the data directory, the server log
/// and the Unix socket. The root is the only thing ever deleted.
/// </summary>
internal sealed class ClusterDirectory
{
    private ClusterDirectory(string root)
    {
        Root = root;
    }

    public string Root { get; }

    public string Data => Path.Combine(Root, "data");

    public string LogFile => Path.Combine(Root, "server.log");

    public string SocketDirectory => Root;

    public string ConfigurationFile => Path.Combine(Data, "postgresql.conf");

    /// <summary>Present at start: the server starts as a standby (here, one with no primary to stream from).</summary>
    public string StandbySignal => Path.Combine(Data, "standby.signal");

    private string PidFile => Path.Combine(Data, "postmaster.pid");

    /// <summary>Creates a fresh root under the system temp directory, mode 0700 (owner only).</summary>
    public static ClusterDirectory Create() => new(Directory.CreateTempSubdirectory("synchro-pg-").FullName);

    public int ReadMajorVersion()
    {
        var text = File.ReadAllText(Path.Combine(Data, "PG_VERSION")).Trim();
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            ? major
            : throw new LocalPostgresException($"Unexpected PG_VERSION '{text}' in {Data}.");
    }

    /// <summary>The postmaster PID from <c>postmaster.pid</c>, or <see langword="null"/> when no server holds the data directory.</summary>
    public int? ReadPostmasterPid()
    {
        try
        {
            var firstLine = File.ReadLines(PidFile).FirstOrDefault();
            return int.TryParse(firstLine, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public string ReadLogTail(int lines)
    {
        try
        {
            var all = File.ReadAllLines(LogFile);
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException)
        {
            return "(no server log)";
        }
        catch (UnauthorizedAccessException)
        {
            return "(server log unreadable)";
        }
    }

    public bool TryDelete()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
            return true;
        }
        catch (IOException)
        {
            return !Directory.Exists(Root);
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
