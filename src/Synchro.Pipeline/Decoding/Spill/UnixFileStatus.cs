using System.Runtime.InteropServices;

namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>
/// What <c>lstat</c> says about a path — its owner, type and permission bits — which .NET has no API for (it exposes the
/// mode, not the owner). Linux and macOS; elsewhere <see cref="Read"/> throws <see cref="PlatformNotSupportedException"/>.
/// </summary>
/// <remarks>
/// Linux uses <c>statx(2)</c>, whose buffer has one layout on every architecture (glibc 2.28+, musl 1.2.5+); macOS uses
/// <c>lstat</c> with its 64-bit-inode <c>struct stat</c>, which has one layout on arm64 and x64.
/// </remarks>
internal readonly record struct UnixFileStatus(uint Owner, UnixFileMode Mode, bool IsDirectory, bool IsSymbolicLink)
{
    private const int NoSuchFile = 2; // ENOENT
    private const int AtWorkingDirectory = -100; // AT_FDCWD
    private const int AtSymlinkNoFollow = 0x100; // AT_SYMLINK_NOFOLLOW
    private const uint StatxTypeModeUid = 0x1 | 0x2 | 0x8; // STATX_TYPE | STATX_MODE | STATX_UID
    private const int TypeMask = 0xF000; // S_IFMT
    private const int DirectoryType = 0x4000; // S_IFDIR
    private const int SymbolicLinkType = 0xA000; // S_IFLNK
    private const int PermissionMask = 0xFFF; // the permission, set-id and sticky bits

    /// <summary>The effective user id of this process: the owner of what it creates.</summary>
    public static uint EffectiveUserId => NativeMethods.geteuid();

    /// <summary>The status of <paramref name="path"/> itself (a symbolic link is not followed); null when nothing is there.</summary>
    /// <exception cref="IOException">The status could not be read (no permission to search a parent, say).</exception>
    /// <exception cref="PlatformNotSupportedException">The C library lacks the call (a Linux C library older than glibc 2.28 or musl 1.2.5), or the OS is neither Linux nor macOS.</exception>
    public static UnixFileStatus? Read(string path)
    {
        try
        {
            return ReadStatus(path);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new PlatformNotSupportedException(
                $"The C library has no {e.Message}: reading a file's owner needs statx on Linux (glibc 2.28 or musl 1.2.5 and later).", e);
        }
    }

    private static UnixFileStatus? ReadStatus(string path)
    {
        int result, mode;
        uint owner;
        if (OperatingSystem.IsLinux())
        {
            result = NativeMethods.statx(AtWorkingDirectory, path, AtSymlinkNoFollow, StatxTypeModeUid, out var buffer);
            (mode, owner) = (buffer.Mode, buffer.Uid);
        }
        else if (OperatingSystem.IsMacOS())
        {
            var stat = default(DarwinStat);
            result = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? NativeMethods.lstat_x64(path, out stat) : NativeMethods.lstat(path, out stat);
            (mode, owner) = (stat.Mode, stat.Uid);
        }
        else
        {
            throw new PlatformNotSupportedException($"Reading a file's owner is implemented for Linux and macOS only, not {RuntimeInformation.OSDescription}.");
        }
        if (result != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            if (error == NoSuchFile)
                return null;
            throw new IOException($"Could not read the status of {path}: {Marshal.GetPInvokeErrorMessage(error)} (errno {error}).");
        }
        return new UnixFileStatus(owner, (UnixFileMode)(mode & PermissionMask), (mode & TypeMask) == DirectoryType, (mode & TypeMask) == SymbolicLinkType);
    }

    // struct statx (linux/stat.h): the same on every architecture. Only the fields read here are named.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(20)]
        public uint Uid;

        [FieldOffset(28)]
        public ushort Mode;
    }

    // struct stat of macOS with 64-bit inodes (the only kind on arm64; lstat$INODE64 on x64).
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    private struct DarwinStat
    {
        [FieldOffset(4)]
        public ushort Mode;

        [FieldOffset(16)]
        public uint Uid;
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern uint geteuid();

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int statx(int directory, string path, int flags, uint mask, out StatxBuffer buffer);

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int lstat(string path, out DarwinStat buffer);

        [DllImport("libc", EntryPoint = "lstat$INODE64", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int lstat_x64(string path, out DarwinStat buffer);
    }
}
