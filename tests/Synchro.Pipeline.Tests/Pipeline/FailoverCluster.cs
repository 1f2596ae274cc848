using System.Globalization;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// A PostgreSQL 17 primary and a hot standby that syncs its failover slots (<c>sync_replication_slots</c>), streaming through
/// the physical slot <see cref="StandbySlot"/> — named in the primary's <c>synchronized_standby_slots</c> — by way of a
/// <see cref="WalStreamProxy"/>; and a database on both, reached through a multi-host connection string that finds the primary.
/// </summary>
internal sealed class FailoverCluster : IAsyncDisposable
{
    public const string StandbySlot = "failover_standby";

    private FailoverCluster(LocalPostgresServer primary, LocalPostgresServer standby, WalStreamProxy proxy, string database)
    {
        Primary = primary;
        Standby = standby;
        Proxy = proxy;
        Database = database;
    }

    public LocalPostgresServer Primary { get; }

    public LocalPostgresServer Standby { get; }

    public WalStreamProxy Proxy { get; }

    public string Database { get; }

    /// <summary>The database on the primary, unpooled (a pooled connection would outlive the primary).</summary>
    public string OnPrimary => Unpooled(Primary.ConnectionString(Database));

    /// <summary>The database on the standby (the primary after the promotion), unpooled.</summary>
    public string OnStandby => Unpooled(Standby.ConnectionString(Database));

    /// <summary>Both servers, the standby first: <c>Target Session Attributes=primary</c> picks whichever is the primary now.</summary>
    public string MultiHost => new NpgsqlConnectionStringBuilder(Primary.ConnectionString(Database))
    {
        Host = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Standby.Port},127.0.0.1:{Primary.Port}"),
        TargetSessionAttributes = "primary",
    }.ConnectionString;

    public static async Task<FailoverCluster> StartAsync(string database)
    {
        var primary = await LocalPostgresServer.StartAsync(new LocalPostgresOptions
        {
            Version = Postgres17ServerFixture.VersionOf17OrNewer,
            Settings = { ["synchronized_standby_slots"] = StandbySlot },
        });
        WalStreamProxy? proxy = null;
        try
        {
            proxy = new WalStreamProxy(primary.Port);
            var password = new NpgsqlConnectionStringBuilder(primary.ConnectionString()).Password;
            var standby = await primary.StartStreamingStandbyAsync(StandbySlot, new Dictionary<string, string>
            {
                ["sync_replication_slots"] = "on",
                // The standby's own list: empty, so that once promoted it waits for no standby it does not have.
                ["synchronized_standby_slots"] = "",
                ["primary_conninfo"] = string.Create(CultureInfo.InvariantCulture,
                    $"host=127.0.0.1 port={proxy.Port} user=postgres password={password} dbname=postgres application_name={StandbySlot} sslmode=disable gssencmode=disable"),
            });
            await Sql.ExecuteAsync(Unpooled(primary.ConnectionString()), $"CREATE DATABASE {database}");
            return new FailoverCluster(primary, standby, proxy, database);
        }
        catch
        {
            if (proxy is not null)
                await proxy.DisposeAsync();
            await primary.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until the standby has flushed the primary's WAL as it is now (the physical slot's <c>restart_lsn</c>).</summary>
    public async Task WaitForStandbyAsync()
    {
        var flushed = await Sql.ScalarAsync<string>(OnPrimary, "SELECT pg_current_wal_flush_lsn()::text");
        await WaitUntilAsync(OnPrimary, $"SELECT restart_lsn >= '{flushed}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{StandbySlot}'", "the standby to flush the primary's WAL");
    }

    /// <summary>
    /// Writes published changes (<paramref name="write"/>, given a counter) until the standby holds a persisted synced copy of
    /// <paramref name="slot"/>: a new synced slot stays temporary until the primary's slot has moved past the standby's oldest
    /// WAL and catalog xmin, which takes a running-xacts record decoded and confirmed after the copy began.
    /// </summary>
    public async Task WaitForSyncedSlotAsync(string slot, Func<int, Task> write)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (var i = 0; !await Sql.ScalarAsync<bool>(Unpooled(Standby.ConnectionString()), $"SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{slot}' AND synced AND NOT temporary)"); i++)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The standby did not persist its synced copy of slot {slot} in 60 s.");
            await Sql.ExecuteAsync(OnPrimary, "SELECT pg_log_standby_snapshot()");
            await write(i);
            await Task.Delay(300);
        }
    }

    public static async Task WaitUntilAsync(string connectionString, string condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await Sql.ScalarAsync<bool>(connectionString, $"SELECT coalesce(({condition}), false)"))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Waited {seconds} s for {what}.");
            await Task.Delay(20);
        }
    }

    public static string Unpooled(string connectionString) => new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;

    public async ValueTask DisposeAsync()
    {
        await Standby.DisposeAsync();
        await Proxy.DisposeAsync();
        await Primary.DisposeAsync();
    }
}
