using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Replication;

[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class ReplicationSlotsTests(PostgresServerFixture postgres)
{
    private const string SlotSql = "SELECT plugin || ' ' || slot_type || ' ' || two_phase || ' ' || (database = current_database()) FROM pg_replication_slots WHERE slot_name = @slot";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Creates_a_pgoutput_slot_once_and_then_reports_it_existing(bool twoPhase)
    {
        var database = await postgres.CreateDatabaseAsync("slots");
        var slot = TestSlots.NewName("slots");

        try
        {
            Assert.True(await ReplicationSlots.CreateIfMissingAsync(database, slot, twoPhase, CancellationToken.None));
            Assert.False(await ReplicationSlots.CreateIfMissingAsync(database, slot, twoPhase, CancellationToken.None));

            Assert.Equal($"pgoutput logical {(twoPhase ? "true" : "false")} true", await Sql.ScalarAsync<string>(database, SlotSql, ("slot", slot)));
        }
        finally
        {
            await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Concurrent_creators_create_the_slot_exactly_once()
    {
        var database = await postgres.CreateDatabaseAsync("slots");
        var slot = TestSlots.NewName("slots");

        try
        {
            var created = await Task.WhenAll(Enumerable.Range(0, 4).Select(
                _ => Task.Run(() => ReplicationSlots.CreateIfMissingAsync(database, slot, twoPhase: false, CancellationToken.None))));

            Assert.Equal(1, created.Count(c => c));
            Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = @slot", ("slot", slot)));
        }
        finally
        {
            await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Drops_an_existing_slot_and_ignores_a_missing_one()
    {
        var database = await postgres.CreateDatabaseAsync("slots");
        var slot = TestSlots.NewName("slots");
        await ReplicationSlots.CreateIfMissingAsync(database, slot, twoPhase: false, CancellationToken.None);

        await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);
        await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);

        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = @slot", ("slot", slot)));
    }

    [Fact]
    public async Task Confirms_an_inactive_slot_forward_and_never_backwards()
    {
        var database = await postgres.CreateDatabaseAsync("slots");
        var slot = TestSlots.NewName("slots");
        await ReplicationSlots.CreateIfMissingAsync(database, slot, twoPhase: false, CancellationToken.None);
        try
        {
            // A slot advances only as far as flushed WAL: commit durably, then aim at the flushed end.
            await Sql.ExecuteAsync(database, "SET synchronous_commit = on; CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
            var before = Lsn.Parse(await Sql.ScalarAsync<string>(database, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = @slot", ("slot", slot)));
            var target = Lsn.Parse(await Sql.ScalarAsync<string>(database, "SELECT pg_current_wal_flush_lsn()::text"));
            Assert.True(target > before);
            await using var source = NpgsqlDataSource.Create(database);

            Assert.Equal(SlotConfirmation.Advanced, (await ReplicationSlots.ConfirmAsync(source, slot, target, CancellationToken.None)).Outcome);
            Assert.Equal(SlotConfirmation.NotNeeded, (await ReplicationSlots.ConfirmAsync(source, slot, target, CancellationToken.None)).Outcome);
            Assert.Equal(SlotConfirmation.NotNeeded, (await ReplicationSlots.ConfirmAsync(source, slot, before, CancellationToken.None)).Outcome);
            Assert.Equal(SlotConfirmation.NotNeeded, (await ReplicationSlots.ConfirmAsync(source, "no_such_slot", target, CancellationToken.None)).Outcome);

            // Invariant 2: a position the server has not written is never sent (the server would move the slot to its WAL end).
            var unwritten = target + (1L << 30);
            var (outcome, walEnd) = await ReplicationSlots.ConfirmAsync(source, slot, unwritten, CancellationToken.None);
            Assert.Equal(SlotConfirmation.NotWritten, outcome);
            Assert.InRange(walEnd, target, unwritten - 1);

            Assert.Equal(target, Lsn.Parse(await Sql.ScalarAsync<string>(database, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = @slot", ("slot", slot))));
        }
        finally
        {
            await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);
        }
    }

    [Theory]
    [InlineData("x\"; DROP TABLE t; --")]
    [InlineData("x'); SELECT pg_drop_replication_slot('golden'); --")]
    [InlineData("Upper")]
    [InlineData("")]
    public async Task Refuses_invalid_slot_names_before_touching_the_server(string slot)
    {
        const string Unreachable = "Host=127.0.0.1;Port=1;Username=nobody;Timeout=1";

        var create = await Assert.ThrowsAsync<WalPipelineConfigurationException>(
            () => ReplicationSlots.CreateIfMissingAsync(Unreachable, slot, twoPhase: false, CancellationToken.None));
        await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => ReplicationSlots.DropAsync(Unreachable, slot, CancellationToken.None));

        Assert.Contains("is invalid", create.Message, StringComparison.Ordinal);
    }
}
