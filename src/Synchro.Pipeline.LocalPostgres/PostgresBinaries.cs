using System.Globalization;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>A directory verified to hold <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>.</summary>
internal sealed class PostgresBinaries
{
    public const string BinDirectoryVariable = "SYNCHRO_PG_BINDIR";

    private const string DebianRoot = "/usr/lib/postgresql";

    private const string NotFoundMessage =
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH, via pg_config --bindir, "
        + "or in /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: apt-get install -y postgresql) "
        + "or set " + BinDirectoryVariable + ".";

    private static readonly string[] s_requiredPrograms = ["initdb", "pg_ctl", "postgres"];

    private PostgresBinaries(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string InitDb => Path.Combine(Directory, "initdb");

    public string PgCtl => Path.Combine(Directory, "pg_ctl");

    /// <summary>
    /// Resolves the binaries: explicit directory, then <c>SYNCHRO_PG_BINDIR</c>, then PATH, then
    /// <c>pg_config --bindir</c>, then <c>/usr/lib/postgresql/*/bin</c> newest major first.
    /// An explicit directory or variable that lacks the binaries is an error, not a fall-through.
    /// </summary>
    public static async Task<PostgresBinaries> LocateAsync(string? explicitDirectory, CancellationToken ct)
    {
        if (explicitDirectory is not null)
        {
            return FromConfigured(explicitDirectory, $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.BinDirectory)}");
        }

        var fromVariable = Environment.GetEnvironmentVariable(BinDirectoryVariable);
        if (!string.IsNullOrEmpty(fromVariable))
        {
            return FromConfigured(fromVariable, BinDirectoryVariable);
        }

        var directory = FromPath()
            ?? await FromPgConfigAsync(ct).ConfigureAwait(false)
            ?? FromDebianLayout()
            ?? throw new LocalPostgresException(NotFoundMessage);
        return new PostgresBinaries(directory);
    }

    private static PostgresBinaries FromConfigured(string directory, string source)
    {
        var full = Path.GetFullPath(directory);
        return HasAllPrograms(full)
            ? new PostgresBinaries(full)
            : throw new LocalPostgresException(
                $"{source} is '{directory}', which does not contain initdb, pg_ctl and postgres; point it at a PostgreSQL server bin directory "
                + "(Debian/Ubuntu: apt-get install -y postgresql, then /usr/lib/postgresql/<major>/bin).");
    }

    /// <summary>Follows the symlink of <c>initdb</c> on PATH so the other programs are looked up beside the real file.</summary>
    private static string? FromPath()
    {
        var initdb = ExecutableSearch.Find("initdb");
        if (initdb is null)
        {
            return null;
        }

        var target = File.ResolveLinkTarget(initdb, returnFinalTarget: true)?.FullName ?? initdb;
        return new[] { Path.GetDirectoryName(target), Path.GetDirectoryName(initdb) }
            .FirstOrDefault(candidate => candidate is not null && HasAllPrograms(candidate));
    }

    private static async Task<string?> FromPgConfigAsync(CancellationToken ct)
    {
        var pgConfig = ExecutableSearch.Find("pg_config");
        if (pgConfig is null)
        {
            return null;
        }

        var result = await ProcessRunner.RunAsync(pgConfig, ["--bindir"], workingDirectory: null, ct).ConfigureAwait(false);
        var directory = result.StandardOutput.Trim();
        return result.Succeeded && directory.Length > 0 && HasAllPrograms(directory) ? directory : null;
    }

    private static string? FromDebianLayout()
    {
        if (!System.IO.Directory.Exists(DebianRoot))
        {
            return null;
        }

        return System.IO.Directory.EnumerateDirectories(DebianRoot)
            .Select(path => (Path: path, Major: ParseMajor(Path.GetFileName(path))))
            .Where(entry => entry.Major is not null)
            .OrderByDescending(entry => entry.Major)
            .Select(entry => Path.Combine(entry.Path, "bin"))
            .FirstOrDefault(HasAllPrograms);
    }

    private static double? ParseMajor(string name) =>
        double.TryParse(name, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var major) ? major : null;

    private static bool HasAllPrograms(string directory) =>
        s_requiredPrograms.All(program => File.Exists(Path.Combine(directory, program)));
}
