using System.Security.Cryptography;
using Npgsql;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// A throwaway PostgreSQL server in a private temporary directory, listening on 127.0.0.1 and a Unix socket,
/// configured for logical replication (<c>wal_level=logical</c>) and two-phase commit. Disposing stops the server and
/// deletes the directory.
/// </summary>
/// <remarks>
/// <para>
/// Nobody else on the machine gets in: TCP connections authenticate with <c>scram-sha-256</c> and the <c>postgres</c>
/// superuser's password, 32 random characters made at start, which <see cref="ConnectionString"/> carries and
/// <see cref="PasswordFile"/> holds (mode 0600) for libpq programs; the Unix socket trusts, but it lies in
/// <see cref="RootDirectory"/>, mode 0700, which only its owner (and root) can enter. The password is written nowhere
/// else: initdb reads it from a 0600 file in that directory, deleted once the cluster exists.
/// </para>
/// </remarks>
/// <remarks>
/// <para>
/// Server binaries are found through <see cref="LocalPostgresOptions.BinDirectory"/>, the <c>SYNCHRO_PG_BINDIR</c>
/// variable, <c>PATH</c>, <c>pg_config --bindir</c> or <c>/usr/lib/postgresql/*/bin</c>, for the major
/// <see cref="LocalPostgresOptions.Version"/> or <c>SYNCHRO_PG_VERSION</c> asks, if any (fetched with npm when missing).
/// When the caller is root, the server runs as the <c>postgres</c> account.
/// </para>
/// </remarks>
public sealed partial class LocalPostgresServer : IAsyncDisposable
{
    private const int StartAttempts = 3;
    private const int LogTailLines = 20;
    private const string Superuser = "postgres";
    private const int PasswordLength = 32;

    private readonly ClusterDirectory _directory;
    private readonly ClusterControl _control;
    private readonly PostgresBinaries _binaries;
    private readonly ServerAccount _account;
    private readonly ServerSettings _settings;
    private readonly bool _keepData;
    private readonly string _password;
    private int _stopped;
    private int _disposed;
    private int _detached;

    private LocalPostgresServer(
        ClusterDirectory directory,
        ClusterControl control,
        PostgresBinaries binaries,
        ServerAccount account,
        ServerSettings settings,
        int port,
        int serverVersion,
        bool keepData,
        string password)
    {
        _directory = directory;
        _password = password;
        _control = control;
        _binaries = binaries;
        _account = account;
        _settings = settings;
        _keepData = keepData;
        BinDirectory = binaries.Directory;
        Port = port;
        ServerVersion = serverVersion;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    /// <summary>The TCP port the server listens on at 127.0.0.1 (also the number of its Unix socket).</summary>
    public int Port { get; }

    /// <summary>The directory holding the server's Unix socket (<c>.s.PGSQL.&lt;port&gt;</c>).</summary>
    public string SocketDirectory => _directory.SocketDirectory;

    /// <summary>The cluster's data directory.</summary>
    public string DataDirectory => _directory.Data;

    /// <summary>The directory the <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c> programs were taken from.</summary>
    public string BinDirectory { get; }

    /// <summary>
    /// The full path of the client program <paramref name="name"/> (<c>psql</c>, <c>pgbench</c>, <c>pg_recvlogical</c>):
    /// beside the server binaries, else the newest in <c>/usr/lib/postgresql/*/bin</c>, else on PATH (the npm server
    /// builds carry no client programs).
    /// </summary>
    /// <param name="name">The program's file name.</param>
    /// <returns>The path of the program.</returns>
    /// <exception cref="LocalPostgresException">No such program was found; the message says what to install.</exception>
    public string ClientProgram(string name) => ClientPrograms.Find(name, BinDirectory);

    /// <summary>The server's major version, e.g. <c>15</c>.</summary>
    public int ServerVersion { get; }

    /// <summary>The server log file (stderr of the postmaster).</summary>
    public string LogFile => _directory.LogFile;

    /// <summary>
    /// A libpq password file (<c>PGPASSFILE=&lt;this&gt; psql -h 127.0.0.1 ...</c>) with the superuser's password, in
    /// <see cref="RootDirectory"/>, mode 0600.
    /// </summary>
    public string PasswordFile => _directory.PasswordFile;

    /// <summary>The private temporary directory holding the data directory, the log and the socket; the only thing ever deleted.</summary>
    public string RootDirectory => _directory.Root;

    /// <summary>
    /// A shell command that stops the server (<c>pg_ctl stop</c>, fast shutdown) as the account it runs as:
    /// for a server left running by <see cref="Detach"/>.
    /// </summary>
    public string StopCommand => ShellCommand.Format(_control.StopCommand());

    /// <summary>
    /// Creates a cluster in a fresh temporary directory and starts it, waiting until it accepts connections.
    /// </summary>
    /// <param name="options">Settings, binaries location and retention; <see langword="null"/> for defaults.</param>
    /// <param name="ct">Cancels the start; the partially created cluster is removed.</param>
    /// <returns>The running server.</returns>
    /// <exception cref="LocalPostgresException">The binaries were not found, or <c>initdb</c> or the start failed.</exception>
    /// <exception cref="ArgumentException">An entry of <see cref="LocalPostgresOptions.Settings"/> is invalid.</exception>
    public static async Task<LocalPostgresServer> StartAsync(LocalPostgresOptions? options = null, CancellationToken ct = default)
    {
        options ??= new LocalPostgresOptions();
        var settings = ServerSettings.Create(options.Settings);
        var binaries = await PostgresBinaries.LocateAsync(options.BinDirectory, options.Version, ct).ConfigureAwait(false);
        var account = await ServerAccount.ResolveAsync(ct).ConfigureAwait(false);
        var directory = ClusterDirectory.Create();
        var control = new ClusterControl(binaries, account, directory);
        try
        {
            var password = RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", PasswordLength);
            await InitDbAsync(directory, control, account, password, ct).ConfigureAwait(false);
            ClusterDirectory.WritePrivateFile(directory.PasswordFile, $"*:*:*:{Superuser}:{password}\n");
            var serverVersion = directory.ReadMajorVersion();
            var port = await StartOnFreePortAsync(directory, control, settings, serverVersion, ct).ConfigureAwait(false);
            return new LocalPostgresServer(directory, control, binaries, account, settings, port, serverVersion, options.KeepData, password);
        }
        catch
        {
            await TryStopAsync(control, immediate: true).ConfigureAwait(false);
            if (!options.KeepData)
            {
                directory.TryDelete();
            }

            throw;
        }
    }

    /// <summary>
    /// An Npgsql connection string for <paramref name="database"/> as the <c>postgres</c> superuser over TCP, with its
    /// password. libpq programs given its host, port and user take the password from <c>PGPASSWORD</c> or <see cref="PasswordFile"/>.
    /// </summary>
    /// <param name="database">The database to connect to.</param>
    /// <returns>The connection string.</returns>
    public string ConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = Superuser,
            Password = _password,
            Database = database,
        }.ConnectionString;

    /// <summary>
    /// An Npgsql connection string for <paramref name="database"/> as the <c>postgres</c> superuser over the Unix socket in
    /// <see cref="SocketDirectory"/>: no password, for this directory's owner (and root) only.
    /// </summary>
    /// <param name="database">The database to connect to.</param>
    /// <returns>The connection string.</returns>
    public string SocketConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder
        {
            Host = SocketDirectory,
            Port = Port,
            Username = Superuser,
            Database = database,
        }.ConnectionString;

    /// <summary>Creates a database named <paramref name="name"/> (quoted as an identifier, so case and characters are kept).</summary>
    /// <param name="name">The database name.</param>
    /// <param name="ct">Cancels the command.</param>
    /// <returns>The connection string for the new database.</returns>
    public async Task<string> CreateDatabaseAsync(string name, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        var admin = new NpgsqlConnectionStringBuilder(ConnectionString()) { Pooling = false }.ConnectionString;
        var connection = new NpgsqlConnection(admin);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            var command = new NpgsqlCommand("CREATE DATABASE " + SqlIdentifier.Quote(name), connection);
            await using (command.ConfigureAwait(false))
            {
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }

        return ConnectionString(name);
    }

    /// <summary>
    /// Restarts the server on the same data directory and port (<c>pg_ctl restart</c>) and waits until it accepts
    /// connections again. Every open connection, replication connections included, is terminated.
    /// </summary>
    /// <param name="immediate">
    /// <see langword="false"/> for a fast shutdown (open transactions are rolled back, a shutdown checkpoint is
    /// written); <see langword="true"/> for an immediate one, after which the server runs crash recovery. With the
    /// default <c>fsync=off</c> and <c>synchronous_commit=off</c>, an immediate restart may lose the most recently
    /// committed transactions.
    /// </param>
    /// <param name="ct">Cancels waiting for the restart; the server may then be stopped or still starting.</param>
    /// <returns>A task completing once the server accepts connections.</returns>
    /// <exception cref="InvalidOperationException">The server was stopped with <see cref="StopAsync"/>.</exception>
    /// <exception cref="ObjectDisposedException">The server was disposed.</exception>
    /// <exception cref="LocalPostgresException">The server did not shut down or did not come back; the message has the log tail.</exception>
    public async Task RestartAsync(bool immediate = false, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _stopped) != 0)
        {
            throw new InvalidOperationException($"The server on port {Port} was stopped; it cannot be restarted.");
        }

        var result = await _control.RestartAsync(immediate, ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new LocalPostgresException(
                $"PostgreSQL failed to restart (pg_ctl exit {result.ExitCode}) in {_directory.Data}: {result.Diagnostics}\n"
                + $"Last lines of {_directory.LogFile}:\n{_directory.ReadLogTail(LogTailLines)}");
        }
    }

    /// <summary>
    /// Takes the server down for <paramref name="downtime"/> — connections to its port are refused meanwhile — then starts
    /// it again on the same data directory and port and waits until it accepts connections: an outage of this server while
    /// others stay up. Every open connection is terminated.
    /// </summary>
    /// <param name="downtime">How long the server stays down, from the moment it is stopped.</param>
    /// <param name="immediate"><see langword="false"/> for a fast shutdown, <see langword="true"/> for an immediate one (crash recovery at the start).</param>
    /// <param name="ct">Cancels the wait; the server is started again either way.</param>
    /// <returns>A task completing once the server accepts connections again.</returns>
    /// <exception cref="InvalidOperationException">The server was stopped with <see cref="StopAsync"/>.</exception>
    /// <exception cref="ObjectDisposedException">The server was disposed.</exception>
    /// <exception cref="LocalPostgresException">The server did not stop or did not come back; the message has the log tail.</exception>
    public async Task StopForAsync(TimeSpan downtime, bool immediate = false, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _stopped) != 0)
        {
            throw new InvalidOperationException($"The server on port {Port} was stopped; it cannot be stopped for a while.");
        }

        if (!await _control.StopAsync(immediate, ct).ConfigureAwait(false))
        {
            throw new LocalPostgresException($"Could not stop the server on port {Port}:\n{_directory.ReadLogTail(LogTailLines)}");
        }

        try
        {
            await Task.Delay(downtime, ct).ConfigureAwait(false);
        }
        finally
        {
            await StartAgainAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A promoted copy of this cluster, as a failover leaves one: stops this server cleanly, copies its data directory
    /// into a new temporary directory and starts this server again; then starts the copy on a port of its own as a
    /// standby with no primary to stream from, and promotes it. The copy is the same cluster (same system identifier,
    /// databases and replication slots) on the next timeline, which forks from this server's at the moment of the copy:
    /// what this server writes afterwards is not part of the copy's history. Every open connection to this server is
    /// terminated by the stop.
    /// </summary>
    /// <param name="ct">Cancels the copy; a partly created copy is removed, and this server may then be stopped.</param>
    /// <returns>The promoted copy, disposed like any server (it stops and deletes its own directory).</returns>
    /// <exception cref="InvalidOperationException">The server was stopped with <see cref="StopAsync"/>.</exception>
    /// <exception cref="LocalPostgresException">A stop, the copy, a start or the promotion failed; the message has the log tail.</exception>
    public async Task<LocalPostgresServer> StartPromotedCopyAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _stopped) != 0)
        {
            throw new InvalidOperationException($"The server on port {Port} was stopped; it cannot be copied.");
        }

        var directory = ClusterDirectory.Create();
        var control = new ClusterControl(_binaries, _account, directory);
        try
        {
            await CopyStoppedAsync(directory, ct).ConfigureAwait(false);

            await File.WriteAllBytesAsync(directory.StandbySignal, [], ct).ConfigureAwait(false);
            var port = await StartOnFreePortAsync(directory, control, _settings, ServerVersion, ct).ConfigureAwait(false);
            var promoted = await control.PromoteAsync(ct).ConfigureAwait(false);
            if (!promoted.Succeeded)
            {
                throw new LocalPostgresException(
                    $"The copy of the server on port {Port} did not promote (pg_ctl exit {promoted.ExitCode}): {promoted.Diagnostics}\n"
                    + $"Last lines of {directory.LogFile}:\n{directory.ReadLogTail(LogTailLines)}");
            }

            ClusterDirectory.WritePrivateFile(directory.PasswordFile, $"*:*:*:{Superuser}:{_password}\n");
            return new LocalPostgresServer(directory, control, _binaries, _account, _settings, port, ServerVersion, _keepData, _password);
        }
        catch
        {
            await TryStopAsync(control, immediate: true).ConfigureAwait(false);
            if (!_keepData)
            {
                directory.TryDelete();
            }

            throw;
        }
    }

    /// <summary>Copies the data directory into <paramref name="directory"/> with this server cleanly stopped, then starts it again.</summary>
    private async Task CopyStoppedAsync(ClusterDirectory directory, CancellationToken ct)
    {
        await _account.GrantOwnershipAsync(directory.Root, ct).ConfigureAwait(false);
        if (!await _control.StopAsync(immediate: false, ct).ConfigureAwait(false))
        {
            throw new LocalPostgresException($"Could not stop the server on port {Port} to copy it:\n{_directory.ReadLogTail(LogTailLines)}");
        }

        try
        {
            await CopyDataAsync(_directory.Data, directory.Data, ct).ConfigureAwait(false);
        }
        finally
        {
            await StartAgainAsync(ct).ConfigureAwait(false);
        }
    }

    // cp -a keeps the files' owner (the server account, when the caller is root) and modes, which the server checks.
    private static async Task CopyDataAsync(string from, string to, CancellationToken ct)
    {
        var cp = ExecutableSearch.Find("cp", "/usr/bin", "/bin")
            ?? throw new LocalPostgresException("'cp' was not found to copy the data directory.");
        var result = await ProcessRunner.RunAsync(cp, ["-a", from, to], workingDirectory: null, ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new LocalPostgresException($"cp -a {from} {to} failed: {result.Diagnostics}");
        }
    }

    private async Task StartAgainAsync(CancellationToken ct)
    {
        var result = await _control.StartAsync(ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new LocalPostgresException(
                $"PostgreSQL failed to start again (pg_ctl exit {result.ExitCode}) in {_directory.Data}: {result.Diagnostics}\n"
                + $"Last lines of {_directory.LogFile}:\n{_directory.ReadLogTail(LogTailLines)}");
        }
    }

    /// <summary>
    /// Stops the server (immediate shutdown, or a clean one with <see cref="LocalPostgresOptions.KeepData"/>).
    /// The directory is kept until disposal. Calling it again does nothing.
    /// </summary>
    /// <param name="ct">Cancels waiting for the stop.</param>
    /// <returns>A task completing once the server is down.</returns>
    /// <exception cref="LocalPostgresException">The server could not be stopped.</exception>
    public async Task StopAsync(CancellationToken ct = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        if (!await _control.StopAsync(immediate: !_keepData, ct).ConfigureAwait(false))
        {
            throw new LocalPostgresException(
                $"Could not stop the server on port {Port}:\n{_directory.ReadLogTail(LogTailLines)}");
        }
    }

    /// <summary>
    /// Leaves the server running after this process ends: from now on neither disposal nor process exit stops it
    /// or deletes <see cref="RootDirectory"/>. The server was started by <c>pg_ctl</c> in its own session, so it
    /// outlives this process; stop it with <see cref="StopCommand"/>, then delete <see cref="RootDirectory"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The server was disposed (and so stopped) already.</exception>
    public void Detach()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Volatile.Write(ref _detached, 1);
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
    }

    /// <summary>
    /// Stops the server and deletes its directory unless <see cref="LocalPostgresOptions.KeepData"/> is set or the
    /// server was detached (<see cref="Detach"/>), in which case it does nothing. Never throws.
    /// </summary>
    /// <returns>A task completing once cleanup has been attempted.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await CleanupAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Runs initdb with <paramref name="password"/> for the superuser, handed over in a 0600 file of the server account's
    /// that is deleted right after.
    /// </summary>
    private static async Task InitDbAsync(ClusterDirectory directory, ClusterControl control, ServerAccount account, string password, CancellationToken ct)
    {
        await account.GrantOwnershipAsync(directory.Root, ct).ConfigureAwait(false);
        ClusterDirectory.WritePrivateFile(directory.InitDbPasswordFile, password + "\n");
        try
        {
            await account.GrantOwnershipAsync(directory.InitDbPasswordFile, ct).ConfigureAwait(false);
            await control.InitDbAsync(directory.InitDbPasswordFile, ct).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(directory.InitDbPasswordFile);
        }
    }

    private static async Task<int> StartOnFreePortAsync(
        ClusterDirectory directory,
        ClusterControl control,
        ServerSettings settings,
        int serverVersion,
        CancellationToken ct)
    {
        var initdbConfiguration = await File.ReadAllTextAsync(directory.ConfigurationFile, ct).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            var port = FreeTcpPort.Next();

            // Rewriting (not recreating) keeps initdb's owner and mode on the file.
            await File.WriteAllTextAsync(
                directory.ConfigurationFile,
                settings.Render(initdbConfiguration, port, directory.SocketDirectory, serverVersion),
                ct).ConfigureAwait(false);

            var result = await control.StartAsync(ct).ConfigureAwait(false);
            if (result.Succeeded)
            {
                return port;
            }

            var logTail = directory.ReadLogTail(LogTailLines);
            if (attempt < StartAttempts && logTail.Contains("Address already in use", StringComparison.Ordinal))
            {
                await control.StopAsync(immediate: true, ct).ConfigureAwait(false);
                continue;
            }

            throw new LocalPostgresException(
                $"PostgreSQL failed to start (pg_ctl exit {result.ExitCode}) in {directory.Data}: {result.Diagnostics}\n"
                + $"Last lines of {directory.LogFile}:\n{logTail}");
        }
    }

    /// <summary>Best effort: a failed stop during cleanup must not mask the caller's own exception.</summary>
    private static async Task TryStopAsync(ClusterControl control, bool immediate)
    {
        try
        {
            await control.StopAsync(immediate, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception)
        {
        }
    }

    private async Task CleanupAsync()
    {
        if (Volatile.Read(ref _detached) != 0)
        {
            return;
        }

        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await TryStopAsync(_control, immediate: !_keepData).ConfigureAwait(false);
        }

        if (!_keepData)
        {
            _directory.TryDelete();
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            CleanupAsync().GetAwaiter().GetResult();
        }
    }
}
