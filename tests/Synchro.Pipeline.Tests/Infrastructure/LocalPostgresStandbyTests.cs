using Npgsql;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Tests.Infrastructure;

public sealed class LocalPostgresStandbyTests
{
    [Fact]
    public async Task A_streaming_standby_follows_the_primary_and_takes_over_when_it_is_killed()
    {
        await using var primary = await LocalPostgresServer.StartAsync();
        var source = await primary.CreateDatabaseAsync("app");
        await Sql.ExecuteAsync(source, "CREATE TABLE t (id int PRIMARY KEY)");
        await Sql.ExecuteAsync(source, "SELECT pg_create_logical_replication_slot('copied_away', 'pgoutput')");

        await using var standby = await primary.StartStreamingStandbyAsync("standby_one");
        Assert.NotEqual(primary.Port, standby.Port);
        // Copying restarted the primary: the connections pooled before it are gone.
        await using (var stale = new NpgsqlConnection(source))
            NpgsqlConnection.ClearPool(stale);
        var onStandby = standby.ConnectionString("app");
        Assert.True(await Sql.ScalarAsync<bool>(onStandby, "SELECT pg_is_in_recovery()"));
        // Like a base backup: no slot of the primary's is copied.
        Assert.Equal(0L, await Sql.ScalarAsync<long>(onStandby, "SELECT count(*) FROM pg_replication_slots"));

        await Sql.ExecuteAsync(source, "INSERT INTO t SELECT generate_series(1, 100)");
        var flushed = await Sql.ScalarAsync<string>(source, "SELECT pg_current_wal_insert_lsn()::text");
        await WaitForAsync(async () => await Sql.ScalarAsync<bool>(
            onStandby, "SELECT pg_last_wal_replay_lsn() >= @lsn::pg_lsn", ("lsn", flushed)));
        Assert.Equal("standby_one", await Sql.ScalarAsync<string>(
            primary.ConnectionString(), "SELECT application_name FROM pg_stat_replication"));

        await primary.KillAsync();
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => Sql.ExecuteAsync(source, "SELECT 1"));
        Assert.Empty(ProcessesWorkingIn(primary.DataDirectory));

        await standby.PromoteAsync();
        Assert.False(await Sql.ScalarAsync<bool>(onStandby, "SELECT pg_is_in_recovery()"));
        await Sql.ExecuteAsync(onStandby, "INSERT INTO t VALUES (101)");
        Assert.Equal(101L, await Sql.ScalarAsync<long>(onStandby, "SELECT count(*) FROM t"));
    }

    private static List<string> ProcessesWorkingIn(string directory) =>
        [.. Directory.EnumerateDirectories("/proc")
            .Where(entry => int.TryParse(Path.GetFileName(entry), out _))
            .Where(entry =>
            {
                try
                {
                    return new DirectoryInfo(Path.Combine(entry, "cwd")).LinkTarget == directory;
                }
                catch (IOException)
                {
                    return false;
                }
            })];

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The standby did not replay the primary's WAL within 30 s.");
            await Task.Delay(50);
        }
    }
}
