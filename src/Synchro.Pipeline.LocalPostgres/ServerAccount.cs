namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// The account the server programs run as. PostgreSQL refuses to run as root, so a root caller runs
/// them as the unprivileged <c>postgres</c> account through <c>runuser</c>, <c>setpriv</c> or <c>su</c>.
/// </summary>
internal sealed class ServerAccount
{
    private const string PostgresUser = "postgres";

    private static readonly string[] s_systemDirectories = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

    private readonly Func<string, IReadOnlyList<string>, (string FileName, IReadOnlyList<string> Arguments)> _wrap;

    private ServerAccount(
        bool dropsPrivileges,
        Func<string, IReadOnlyList<string>, (string FileName, IReadOnlyList<string> Arguments)> wrap)
    {
        DropsPrivileges = dropsPrivileges;
        _wrap = wrap;
    }

    /// <summary>True when the caller is root and programs run as <c>postgres</c>.</summary>
    public bool DropsPrivileges { get; }

    public static async Task<ServerAccount> ResolveAsync(CancellationToken ct)
    {
        if (Environment.UserName != "root")
        {
            return new ServerAccount(dropsPrivileges: false, (program, arguments) => (program, arguments));
        }

        var id = ExecutableSearch.Find("id", s_systemDirectories);
        var lookup = id is null
            ? null
            : await ProcessRunner.RunAsync(id, ["-u", PostgresUser], workingDirectory: null, ct).ConfigureAwait(false);
        if (lookup is not { Succeeded: true })
        {
            throw new LocalPostgresException(
                "Running as root, but PostgreSQL cannot run as root and there is no 'postgres' account to run it as; "
                + "create one (useradd --system postgres) or install the server package (apt-get install -y postgresql).");
        }

        return new ServerAccount(dropsPrivileges: true, ChooseSwitcher());
    }

    public (string FileName, IReadOnlyList<string> Arguments) Command(string program, IReadOnlyList<string> arguments) =>
        _wrap(program, arguments);

    /// <summary>Gives <c>postgres</c> ownership of <paramref name="directory"/> (a file or, not recursively, a directory) when privileges are dropped.</summary>
    public async Task GrantOwnershipAsync(string directory, CancellationToken ct)
    {
        if (!DropsPrivileges)
        {
            return;
        }

        var chown = ExecutableSearch.Find("chown", s_systemDirectories)
            ?? throw new LocalPostgresException("Running as root, but 'chown' was not found to hand the data directory to 'postgres'.");
        var result = await ProcessRunner.RunAsync(chown, [PostgresUser + ":", directory], workingDirectory: null, ct)
            .ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new LocalPostgresException($"chown {PostgresUser}: {directory} failed: {result.Diagnostics}");
        }
    }

    private static Func<string, IReadOnlyList<string>, (string, IReadOnlyList<string>)> ChooseSwitcher()
    {
        if (ExecutableSearch.Find("runuser", s_systemDirectories) is { } runuser)
        {
            return (program, arguments) => (runuser, ["-u", PostgresUser, "--", program, .. arguments]);
        }

        if (ExecutableSearch.Find("setpriv", s_systemDirectories) is { } setpriv)
        {
            return (program, arguments) =>
                (setpriv, [$"--reuid={PostgresUser}", $"--regid={PostgresUser}", "--init-groups", "--", program, .. arguments]);
        }

        if (ExecutableSearch.Find("su", s_systemDirectories) is { } su)
        {
            // The fixed script execs its positional parameters, so no argument is ever parsed by the shell.
            return (program, arguments) =>
                (su, ["-s", "/bin/sh", "-c", "exec \"$0\" \"$@\"", PostgresUser, "--", program, .. arguments]);
        }

        throw new LocalPostgresException(
            "Running as root, but none of runuser, setpriv or su was found to run PostgreSQL as 'postgres'; install util-linux.");
    }
}
