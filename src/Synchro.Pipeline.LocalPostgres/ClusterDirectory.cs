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

    /// <summary>The superuser's password for initdb, present only while initdb runs.</summary>
    public string InitDbPasswordFile => Path.Combine(Root, "initdb-password");

    /// <summary>A libpq password file (<c>PGPASSFILE</c>) with the superuser's password, mode 0600.</summary>
    public string PasswordFile => Path.Combine(Root, "pgpass");

    /// <summary>Present at start: the server starts as a standby (here, one with no primary to stream from).</summary>
    public string StandbySignal => Path.Combine(Data, "standby.signal");

    private string PidFile => Path.Combine(Data, "postmaster.pid");

    /// <summary>Creates a fresh root under the system temp directory, mode 0700 (owner only): it holds the Unix socket, which trusts whoever reaches it.</summary>
    public static ClusterDirectory Create()
    {
        var root = Directory.CreateTempSubdirectory("synchro-pg-").FullName;
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(root) & (UnixFileMode)0b_000_111_111) != 0)
        {
            Directory.Delete(root);
            throw new LocalPostgresException($"The temporary directory {root} was created open to other users; the server's socket must not be.");
        }

        return new ClusterDirectory(root);
    }

    /// <summary>Writes <paramref name="text"/> to a new file at <paramref name="path"/> that only its owner can read (0600).</summary>
    public static void WritePrivateFile(string path, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var writer = new StreamWriter(path, System.Text.Encoding.ASCII, options);
        writer.Write(text);
    }

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
