using System.Globalization;
using System.Runtime.Versioning;

namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>
/// Makes a directory that only this process's user can enter, for files that hold row data: created with mode 0700;
/// one found there already must be a real directory (not a symbolic link) owned by the process's effective user, and
/// loses any permission of group and others. The directory it sits in must not let another user replace it.
/// </summary>
/// <remarks>
/// Invariant: once <see cref="Prepare"/> returned, no other (non-root) user can read, create, replace or link anything in
/// the directory: it is ours and 0700, and its parent is ours and 0700 too, or belongs to us or root and is not writable
/// by others (or has the sticky bit, as <c>/tmp</c> has, so nobody can rename what we own in it). Windows has no such
/// modes; there the directory lives in the user's own temporary directory and only its creation is done here.
/// </remarks>
internal static class PrivateDirectory
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode GroupOrOthers = (UnixFileMode)0b_000_111_111;
    private const UnixFileMode WritableByOthers = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
    private const uint Root = 0;

    /// <summary>What <see cref="Prepare"/> found and changed.</summary>
    /// <param name="Tightened">Directories of ours whose group or other permissions were removed, with the mode they had.</param>
    public sealed record Outcome(IReadOnlyList<(string Path, UnixFileMode Mode)> Tightened);

    /// <summary>
    /// Prepares <paramref name="directory"/> as private to <paramref name="owner"/> (default: this process's effective
    /// user). Its parent is made private too when <paramref name="privateParent"/> (the pipeline's own root) or when it
    /// does not exist yet (created now, so ours); otherwise it is someone's chosen location and only must not let others
    /// replace what is in it.
    /// </summary>
    /// <exception cref="WalPipelineConfigurationException">A directory on the way belongs to someone else, is a symbolic link, is not a directory, or lets others replace the directory.</exception>
    /// <exception cref="IOException">A directory could not be created or read.</exception>
    /// <exception cref="UnauthorizedAccessException">A directory could not be created.</exception>
    public static Outcome Prepare(string directory, bool privateParent, uint? owner = null)
    {
        var tightened = new List<(string, UnixFileMode)>();
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return new Outcome(tightened);
        }
        var user = owner ?? UnixFileStatus.EffectiveUserId;
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(directory));
        if (parent is not null)
        {
            if (privateParent || UnixFileStatus.Read(parent) is null)
                EnsurePrivate(parent, user, tightened);
            else
                CheckParent(parent, user);
        }
        EnsurePrivate(directory, user, tightened);
        return new Outcome(tightened);
    }

    /// <summary>Creates <paramref name="path"/> with mode 0700 unless it exists; then checks it is a real directory of <paramref name="owner"/> and removes group and other permissions.</summary>
    [UnsupportedOSPlatform("windows")]
    private static void EnsurePrivate(string path, uint owner, List<(string, UnixFileMode)> tightened)
    {
        if (UnixFileStatus.Read(path) is null)
            Directory.CreateDirectory(path, OwnerOnly);
        // Read again whether or not this call created it: another user may have created it first, between the two calls.
        var status = UnixFileStatus.Read(path) ?? throw new IOException($"{path} disappeared right after it was created.");
        if (status.IsSymbolicLink)
            throw Refused(path, "is a symbolic link", "The pipeline never follows a link there: remove it, or set SpillDirectory to a directory of this user's own.");
        if (!status.IsDirectory)
            throw Refused(path, "is not a directory", "Remove it, or set SpillDirectory elsewhere.");
        if (status.Owner != owner)
        {
            throw Refused(path, $"belongs to uid {Uid(status.Owner)}, not to this process's user (uid {Uid(owner)})",
                "Another user may have created it to read or plant spilled changes: remove it (as that user or root), or set SpillDirectory to a directory of this user's own.");
        }
        if ((status.Mode & GroupOrOthers) != 0)
        {
            File.SetUnixFileMode(path, OwnerOnly);
            tightened.Add((path, status.Mode));
        }
    }

    /// <summary>A parent chosen by the operator: it may be shared (like <c>/tmp</c>), but no other user may be able to replace the pipeline's directory in it.</summary>
    [UnsupportedOSPlatform("windows")]
    private static void CheckParent(string path, uint owner)
    {
        // The parent may be reached through a link of the operator's (SpillDirectory=/data/spill with /data a link): what counts is where it leads.
        var target = new DirectoryInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        var status = UnixFileStatus.Read(target) ?? throw new IOException($"{path} disappeared while it was checked.");
        if (!status.IsDirectory)
            throw Refused(path, "is not a directory", "Set SpillDirectory to a directory.");
        if (status.Owner != owner && status.Owner != Root)
        {
            throw Refused(path, $"belongs to uid {Uid(status.Owner)}, neither this process's user (uid {Uid(owner)}) nor root",
                "Its owner could replace the pipeline's spill directory in it: set SpillDirectory to a directory of this user's own.");
        }
        if ((status.Mode & WritableByOthers) != 0 && (status.Mode & UnixFileMode.StickyBit) == 0)
        {
            throw Refused(path, $"is writable by other users (mode {Octal(status.Mode)}) without the sticky bit",
                "Any of them could replace the pipeline's spill directory in it: remove their write permission (chmod go-w), set the sticky bit (chmod +t, as /tmp has), or set SpillDirectory elsewhere.");
        }
    }

    private static WalPipelineConfigurationException Refused(string path, string problem, string fix)
        => new($"The spill directory {path} {problem}, so the pipeline will not keep row data there. {fix}");

    private static string Uid(uint uid) => uid.ToString(CultureInfo.InvariantCulture);

    /// <summary><paramref name="mode"/> as <c>ls</c> and <c>chmod</c> write it, e.g. <c>0755</c>.</summary>
    internal static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8).PadLeft(3, '0');
}
