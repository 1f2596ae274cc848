using System.Globalization;
using Npgsql;

namespace Synchro.Pipeline.LocalPostgres;

// Physical replication: a streaming standby of this server, its promotion, and the sudden death of a primary.
public sealed partial class LocalPostgresServer
{
    /// <summary>
    /// A hot standby streaming from this server through the physical replication slot <paramref name="slotName"/>, as a
    /// base backup would make one: creates the slot here (if missing), stops this server cleanly, copies its data
    /// directory without its replication slots, starts this server again, and starts the copy on a port of its own in
    /// standby mode (<c>primary_conninfo</c> with <c>dbname=postgres</c>, <c>primary_slot_name</c>,
    /// <c>hot_standby_feedback = on</c>). Every open connection to this server is terminated by the stop.
    /// </summary>
    /// <param name="slotName">The physical slot on this server that keeps the WAL the standby has not received.</param>
    /// <param name="settings">
    /// Extra <c>postgresql.conf</c> settings of the standby, over this server's (for example <c>sync_replication_slots</c>).
    /// </param>
    /// <param name="ct">Cancels the copy; a partly created standby is removed.</param>
    /// <returns>The standby, streaming; disposed like any server.</returns>
    /// <exception cref="InvalidOperationException">The server was stopped.</exception>
    /// <exception cref="LocalPostgresException">A stop, the copy or a start failed; the message has the log tail.</exception>
    public async Task<LocalPostgresServer> StartStreamingStandbyAsync(
        string slotName,
        IDictionary<string, string>? settings = null,
        CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(slotName);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _stopped) != 0)
        {
            throw new InvalidOperationException($"The server on port {Port} was stopped; it has no standby.");
        }

        await EnsurePhysicalSlotAsync(slotName, ct).ConfigureAwait(false);
        var conninfo = string.Create(
            CultureInfo.InvariantCulture,
            $"host=127.0.0.1 port={Port} user={Superuser} password={_password} dbname=postgres application_name={slotName}");
        var standbySettings = _settings.With(new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["primary_conninfo"] = conninfo,
            ["primary_slot_name"] = slotName,
            ["hot_standby"] = "on",
            ["hot_standby_feedback"] = "on",
        }).With(settings ?? new Dictionary<string, string>());

        var directory = ClusterDirectory.Create();
        var control = new ClusterControl(_binaries, _account, directory);
        try
        {
            await CopyStoppedAsync(directory, ct).ConfigureAwait(false);

            // A base backup carries no slots: a copied logical slot would block slot synchronisation of the same name,
            // and a copied physical slot would hold WAL on the standby for ever.
            foreach (var slot in Directory.EnumerateDirectories(Path.Combine(directory.Data, "pg_replslot")))
            {
                Directory.Delete(slot, recursive: true);
            }

            await File.WriteAllBytesAsync(directory.StandbySignal, [], ct).ConfigureAwait(false);
            await _account.GrantOwnershipAsync(directory.StandbySignal, ct).ConfigureAwait(false);
            var port = await StartOnFreePortAsync(directory, control, standbySettings, ServerVersion, ct).ConfigureAwait(false);
            ClusterDirectory.WritePrivateFile(directory.PasswordFile, $"*:*:*:{Superuser}:{_password}\n");
            return new LocalPostgresServer(directory, control, _binaries, _account, standbySettings, port, ServerVersion, _keepData, _password);
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

    /// <summary>
    /// Ends recovery on this standby (<c>pg_ctl promote</c>) and waits until it accepts writes on its new timeline.
    /// </summary>
    /// <param name="ct">Cancels waiting for the promotion.</param>
    /// <returns>A task completing once the server is a primary.</returns>
    /// <exception cref="LocalPostgresException">The server is not a standby, or did not promote; the message has the log tail.</exception>
    public async Task PromoteAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var result = await _control.PromoteAsync(ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new LocalPostgresException(
                $"The server on port {Port} did not promote (pg_ctl exit {result.ExitCode}): {result.Diagnostics}\n"
                + $"Last lines of {_directory.LogFile}:\n{_directory.ReadLogTail(LogTailLines)}");
        }
    }

    /// <summary>
    /// Kills the server as a machine failure would: SIGKILL to the postmaster and every process it started, with no
    /// shutdown checkpoint and no goodbye to its clients or standbys. The server stays down; its directory is kept until
    /// disposal.
    /// </summary>
    /// <returns>A task completing once the processes are gone.</returns>
    /// <exception cref="LocalPostgresException">A process of the server survived.</exception>
    public Task KillAsync()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Volatile.Write(ref _stopped, 1);
        if (!_control.Kill())
        {
            throw new LocalPostgresException($"The server on port {Port} could not be killed:\n{_directory.ReadLogTail(LogTailLines)}");
        }

        return Task.CompletedTask;
    }

    private async Task EnsurePhysicalSlotAsync(string slotName, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString()) { Pooling = false }.ConnectionString);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            var command = new NpgsqlCommand(
                """
                SELECT pg_create_physical_replication_slot($1, true)
                WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)
                """,
                connection);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.AddWithValue(slotName);
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }
    }
}
