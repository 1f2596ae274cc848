using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Sampling;
using Synchro.Pipeline.LoadHarness.Statements;
using Synchro.Pipeline.LoadHarness.Walsender;

namespace Synchro.Pipeline.LoadHarness.ServerCost;

/// <summary>
/// Where and how the server's cost is measured: the server, its pg_waldump, whether the WAL is broken down by relation,
/// and whether the statements are read from <c>pg_stat_statements</c> (created in the database of <see cref="ConnectionString"/>).
/// </summary>
internal sealed record ServerCostProbe(string ConnectionString, WalDump? WalDump, bool WalByRelation, bool Statements = false);

/// <summary>
/// Reads, every <see cref="Interval"/> in the background, the CPU of every process of the (local) server: the postmaster's
/// children from <c>/proc</c>, classified by <c>pg_stat_activity</c> (<see cref="ServerProcessKind"/>), and the insert LSN
/// and <c>pg_stat_wal</c> at the start and the end; with <see cref="ServerCostProbe.Statements"/>, <c>pg_stat_statements</c>
/// reset at the start and read at the end. A process that lives less than an interval between two readings is
/// missed; the measured ones live for the whole phase.
/// </summary>
internal sealed class ServerCostSampler : IAsyncDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);

    /// <summary>The sampler's own connection: not counted.</summary>
    public const string SamplerApplication = "synchro-bench-sampler";

    /// <summary>
    /// A connection of the harness's pollers: named <see cref="SamplerApplication"/> so that its backend's CPU is not
    /// counted, and untracked by <c>pg_stat_statements</c> (a placeholder setting where the extension is not loaded).
    /// </summary>
    public static string SamplerConnectionString(string connectionString, string? database = null, bool pooling = true)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = SamplerApplication, Pooling = pooling, Options = "-c pg_stat_statements.track=none" };
        if (database is not null)
            builder.Database = database;
        return builder.ConnectionString;
    }

    private readonly ServerCostProbe _probe;
    private readonly NpgsqlConnection _connection;
    private readonly IReadOnlySet<string> _writers;
    private readonly int _postmaster;
    private readonly CpuLedger _ledger;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly SamplingLoop _sampling = new();
    private (string Lsn, long? Records, long? Fpi, long? Bytes) _walStart;

    private ServerCostSampler(ServerCostProbe probe, NpgsqlConnection connection, IReadOnlySet<string> writers, int postmaster, long phaseStart)
    {
        _probe = probe;
        _connection = connection;
        _writers = writers;
        _postmaster = postmaster;
        _ledger = new CpuLedger(phaseStart);
    }

    /// <summary>Starts measuring; null where there is no <c>/proc</c>. <paramref name="writers"/>: the writer's <c>application_name</c>s.</summary>
    public static async Task<ServerCostSampler?> StartAsync(ServerCostProbe probe, IReadOnlySet<string> writers, CancellationToken ct)
    {
        if (!WalsenderCpu.Supported)
            return null;
        var connection = new NpgsqlConnection(SamplerConnectionString(probe.ConnectionString, pooling: false));
        await connection.OpenAsync(ct);
        await using var backend = new NpgsqlCommand("SELECT pg_backend_pid()", connection);
        var postmaster = ProcStat.Read((int)(await backend.ExecuteScalarAsync(ct))!)?.ParentPid
            ?? throw new InvalidOperationException("the server's processes are not in this machine's /proc: its CPU cannot be read");
        var sampler = new ServerCostSampler(probe, connection, writers, postmaster, WalsenderCpu.UptimeTicks());
        sampler._walStart = await sampler.ReadWalAsync(ct);
        if (probe.Statements)
            await PgStatStatements.ResetAsync(connection, ct);
        await sampler.SampleAsync(ct);
        sampler._sampling.Start(Interval, () => sampler.SampleAsync(CancellationToken.None));
        return sampler;
    }

    /// <summary>
    /// Reads a last time and returns the phase's cost, per change of <paramref name="changes"/>. pg_waldump (when found)
    /// reads the range after it has been flushed.
    /// </summary>
    public async Task<ServerCostResult> StopAsync(long changes, CancellationToken ct)
    {
        await _sampling.StopAsync();
        var statements = _probe.Statements ? await PgStatStatements.ReadAsync(_connection, ct) : null;
        await SampleAsync(ct);
        var walEnd = await ReadWalAsync(ct);
        var (seconds, processes) = _ledger.Totals(WalsenderCpu.TicksPerSecond);
        var result = new ServerCostResult
        {
            Seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds,
            Changes = changes,
            CpuSeconds = seconds,
            Processes = processes,
            StartLsn = _walStart.Lsn,
            EndLsn = walEnd.Lsn,
            WalBytes = await LsnDifferenceAsync(walEnd.Lsn, _walStart.Lsn, ct),
            StatsWalRecords = walEnd.Records - _walStart.Records,
            StatsWalFpi = walEnd.Fpi - _walStart.Fpi,
            StatsWalBytes = walEnd.Bytes - _walStart.Bytes,
            Statements = statements,
        };
        if (_probe.WalDump is not { } dump)
            return result;
        if (result.WalBytes == 0)
            return result with { WalDump = new WalDumpTotals(0, 0, 0, 0), WalByRelation = _probe.WalByRelation ? [] : null };
        try
        {
            await WaitForFlushAsync(walEnd.Lsn, ct);
            result = result with { WalDump = await dump.TotalsAsync(_walStart.Lsn, walEnd.Lsn, ct) };
            if (!_probe.WalByRelation)
                return result;
            var shares = await dump.ByRelationAsync(_walStart.Lsn, walEnd.Lsn, ct);
            var names = await RelationNamesAsync(ct);
            return result with
            {
                WalByRelation = [.. shares.Values
                    .Select(s => s with { Relation = names.TryGetValue(s.Relation, out var name) ? name : s.Relation })
                    .OrderByDescending(s => s.Bytes)],
            };
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // The CPU and LSN figures stand without pg_waldump's.
            return result with { WalDumpError = e.Message };
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _sampling.StopQuietlyAsync();
        await _connection.DisposeAsync();
        _sampling.Dispose();
    }


    private async Task SampleAsync(CancellationToken ct)
    {
        // pg_stat_activity first: a backend that starts in between is read below as a postmaster child of no kind yet.
        var kinds = new Dictionary<int, string?>();
        await using (var query = new NpgsqlCommand("SELECT pid, backend_type, application_name FROM pg_stat_activity", _connection))
        await using (var reader = await query.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                if (!reader.IsDBNull(0))
                    kinds[reader.GetInt32(0)] = ServerProcessKind.Classify(reader.IsDBNull(1) ? null : reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), _writers, SamplerApplication);
            }
        }
        foreach (var pid in Children().Append(_postmaster))
        {
            var listed = kinds.TryGetValue(pid, out var kind);
            if (listed && kind is null)
                continue;
            if (ProcStat.Read(pid) is not { } stat)
                continue;
            // A child not (yet) listed keeps the kind it was given before.
            _ledger.Observe(pid, kind ?? _ledger.KindOf(pid) ?? ServerProcessKind.OtherProcesses, stat);
        }
    }

    /// <summary>The postmaster's children: its <c>children</c> file where the kernel has one, else a scan of /proc.</summary>
    private IEnumerable<int> Children()
    {
        var file = $"/proc/{_postmaster}/task/{_postmaster}/children";
        if (File.Exists(file))
        {
            return File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture)).ToList();
        }
        var children = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && ProcStat.Read(pid)?.ParentPid == _postmaster)
                children.Add(pid);
        }
        return children;
    }

    private async Task<(string Lsn, long? Records, long? Fpi, long? Bytes)> ReadWalAsync(CancellationToken ct)
    {
        // pg_stat_wal exists from PostgreSQL 14 (the harness's servers are 15 and later); wal_bytes is numeric.
        const string Sql = "SELECT pg_current_wal_insert_lsn()::text, wal_records, wal_fpi, wal_bytes::bigint FROM pg_stat_wal";
        await using var command = new NpgsqlCommand(Sql, _connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetInt64(3));
    }

    private async Task<long> LsnDifferenceAsync(string end, string start, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint", _connection);
        command.Parameters.AddWithValue(end);
        command.Parameters.AddWithValue(start);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    private async Task WaitForFlushAsync(string lsn, CancellationToken ct)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            await using var command = new NpgsqlCommand("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", _connection);
            command.Parameters.AddWithValue(lsn);
            if ((bool)(await command.ExecuteScalarAsync(ct))! || waited.Elapsed > TimeSpan.FromSeconds(30))
                return;
            await Task.Delay(Interval, ct);
        }
    }

    /// <summary>"database: relation" per "database oid/relfilenode", from every database that takes connections.</summary>
    private async Task<Dictionary<string, string>> RelationNamesAsync(CancellationToken ct)
    {
        // Not the templates: a connection to one makes CREATE DATABASE fail.
        var databases = new List<(uint Oid, string Name)>();
        await using (var list = new NpgsqlCommand("SELECT oid, datname FROM pg_database WHERE datallowconn AND NOT datistemplate", _connection))
        await using (var reader = await list.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
                databases.Add((reader.GetFieldValue<uint>(0), reader.GetString(1)));
        }
        var names = new Dictionary<string, string>();
        foreach (var (oid, name) in databases)
        {
            await using var connection = new NpgsqlConnection(SamplerConnectionString(_probe.ConnectionString, name, pooling: false));
            await connection.OpenAsync(ct);
            await using var relations = new NpgsqlCommand("""
                SELECT pg_relation_filenode(c.oid)::bigint, c.relname, c.relisshared
                FROM pg_class c WHERE pg_relation_filenode(c.oid) IS NOT NULL
                """, connection);
            await using var reader = await relations.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var node = reader.GetInt64(0).ToString(CultureInfo.InvariantCulture);
                names[$"{(reader.GetBoolean(2) ? 0 : oid).ToString(CultureInfo.InvariantCulture)}/{node}"] = reader.GetBoolean(2) ? $"shared: {reader.GetString(1)}" : $"{name}: {reader.GetString(1)}";
            }
        }
        return names;
    }
}
