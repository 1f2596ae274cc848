using System.Runtime.Versioning;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// The directory fetched server builds are kept in, one subdirectory per build (<c>postgresql-18.4.0/{bin,lib,share}</c>).
/// </summary>
/// <remarks>
/// It is <c>/var/cache/synchro-pipeline</c> for root: the server then runs as <c>postgres</c>, which must reach the
/// binaries, and <c>/root</c> is usually mode 0700. Otherwise it is <c>$XDG_CACHE_HOME/synchro-pipeline</c> (default
/// <c>~/.cache</c>), as the server runs as the caller. A build is unpacked into a sibling staging directory and renamed
/// into place under a file lock, so concurrent processes fill it once and never see it half written.
/// </remarks>
internal static class BinaryCache
{
    private const string RootCacheDirectory = "/var/cache/synchro-pipeline";

    // Waiting for another process that is downloading and unpacking the same build.
    private static readonly TimeSpan s_lockTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan s_lockPoll = TimeSpan.FromMilliseconds(200);

    private static readonly UnixFileMode s_directoryMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    public static string Root()
    {
        if (Environment.UserName == "root")
        {
            return RootCacheDirectory;
        }

        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var cache = !string.IsNullOrEmpty(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "synchro-pipeline");
    }

    /// <summary>The bin directory of the build <paramref name="name"/>, whether or not it is there yet.</summary>
    public static string Bin(string name) => Path.Combine(Root(), name, "bin");

    /// <summary>
    /// Returns <see cref="Bin"/> of <paramref name="name"/>, first filling it with <paramref name="fill"/> (given an empty
    /// staging directory) unless another process has.
    /// </summary>
    [SupportedOSPlatform("linux")]
    public static async Task<string> FillAsync(string name, Func<string, Task> fill, CancellationToken ct)
    {
        var root = Root();
        var target = Path.Combine(root, name);
        var bin = Path.Combine(target, "bin");
        try
        {
            CreateReadableDirectory(root);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new LocalPostgresException($"The cache directory {root} cannot be created ({ex.Message}); make it writable, or set XDG_CACHE_HOME elsewhere.", ex);
        }

        var gate = await AcquireLockAsync(Path.Combine(root, name + ".lock"), ct).ConfigureAwait(false);
        await using (gate.ConfigureAwait(false))
        {
            // Another process may have filled the cache while this one waited.
            if (PostgresBinaries.HasAllPrograms(bin))
            {
                return bin;
            }

            // Holding the lock, any staging directory is a leftover of a process that died while unpacking.
            foreach (var stale in Directory.EnumerateDirectories(root, name + ".staging-*"))
            {
                Directory.Delete(stale, recursive: true);
            }

            var staging = Path.Combine(root, $"{name}.staging-{Environment.ProcessId}");
            try
            {
                CreateReadableDirectory(staging);
                await fill(staging).ConfigureAwait(false);

                // A leftover without a complete bin directory (no rename ever produces one) would block the rename.
                if (Directory.Exists(target))
                {
                    Directory.Delete(target, recursive: true);
                }

                Directory.Move(staging, target);
            }
            finally
            {
                if (Directory.Exists(staging))
                {
                    Directory.Delete(staging, recursive: true);
                }
            }

            return bin;
        }
    }

    /// <summary>Creates the directory (and missing parents) with mode 0755, so the server account can reach what is inside.</summary>
    [SupportedOSPlatform("linux")]
    public static void CreateReadableDirectory(string path)
    {
        var missing = new Stack<string>();
        for (var directory = Path.GetFullPath(path); directory is not null && !Directory.Exists(directory); directory = Path.GetDirectoryName(directory))
        {
            missing.Push(directory);
        }

        while (missing.TryPop(out var directory))
        {
            Directory.CreateDirectory(directory);
            File.SetUnixFileMode(directory, s_directoryMode);
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
                await Task.Delay(s_lockPoll, ct).ConfigureAwait(false);
            }
        }
    }
}
