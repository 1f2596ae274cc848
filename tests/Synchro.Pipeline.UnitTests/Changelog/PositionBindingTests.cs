using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>Invariant 8: which persisted positions the pipeline refuses, and what it tells the operator to do.</summary>
public sealed class PositionBindingTests
{
    private const string Slot = "synchro_slot";

    private static readonly SourceIdentity s_server = new(7_716_008_738_669_856_979, 1, 16_384, "app");

    private static readonly Lsn s_walEnd = Lsn.Parse("2/76580000");

    private static SourceState Source(Lsn? slotConfirmed = null, SourceIdentity? identity = null, Lsn? walEnd = null)
        => new(identity ?? s_server, walEnd ?? s_walEnd, slotConfirmed);

    private static PositionProblem? Verify(PersistedPosition? persisted, SourceState source, TimelineHistory? history = null, bool slotConfirmsOnlyPersisted = true)
    {
        Assert.Equal(history is not null, PositionBinding.NeedsHistory(persisted, source));
        return PositionBinding.Verify(Slot, persisted, source, history, slotConfirmsOnlyPersisted);
    }

    [Fact]
    public void No_row_and_the_snapshots_pending_marker_are_not_checked()
    {
        Assert.Null(Verify(null, Source(Lsn.Parse("9/0"))));
        Assert.Null(Verify(new PersistedPosition(Lsn.Invalid, s_server with { SystemId = 1 }), Source(Lsn.Parse("9/0"))));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_position_within_the_wal_and_at_or_past_the_slot_fits_bound_or_not(bool bound)
    {
        var source = bound ? s_server : null;

        Assert.Null(Verify(new PersistedPosition(s_walEnd, source), Source(s_walEnd)));
        Assert.Null(Verify(new PersistedPosition(Lsn.Parse("2/1000"), source), Source(Lsn.Parse("2/0"))));
        Assert.Null(Verify(new PersistedPosition(Lsn.Parse("2/1000"), source), Source(slotConfirmed: null)));
    }

    [Fact]
    public void A_position_ahead_of_the_servers_wal_is_refused_with_the_slots_position_to_resume_from()
    {
        var problem = Verify(new PersistedPosition(Lsn.Parse("2/A9681168"), null), Source(Lsn.Parse("2/76000000")));

        Assert.Equal(PositionProblemKind.AheadOfWal, problem!.Kind);
        Assert.Contains("2/A9681168", problem.Message, StringComparison.Ordinal);
        Assert.Contains("its WAL ends at 2/76580000, 817 MiB before it", problem.Message, StringComparison.Ordinal);
        Assert.Contains("skip every change up to it", problem.Message, StringComparison.Ordinal);
        Assert.Contains("resume from the slot's own position 2/76000000: in the changelog database, DELETE FROM sync_wal_position WHERE slot_name = 'synchro_slot'", problem.Message, StringComparison.Ordinal);
        Assert.Contains("SELECT pg_drop_replication_slot('synchro_slot')", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_position_of_another_cluster_is_refused_before_its_lsn_is_compared()
    {
        var problem = Verify(new PersistedPosition(Lsn.Parse("F/0"), s_server with { SystemId = 42 }), Source(Lsn.Parse("1/0")));

        Assert.Equal(PositionProblemKind.OtherCluster, problem!.Kind);
        Assert.Contains("system identifier 42", problem.Message, StringComparison.Ordinal);
        Assert.Contains("this server is cluster 7716008738669856979", problem.Message, StringComparison.Ordinal);
        Assert.Contains("give this pipeline its own slot (SlotName) and its own changelog database", problem.Message, StringComparison.Ordinal);
        Assert.Contains("InitialSnapshot on", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_position_of_another_database_is_refused()
    {
        var problem = Verify(new PersistedPosition(Lsn.Parse("1/0"), s_server with { DatabaseOid = 16_999, Database = "old_app" }), Source(Lsn.Parse("1/0")));

        Assert.Equal(PositionProblemKind.OtherDatabase, problem!.Kind);
        Assert.Contains("database 'old_app' (OID 16999)", problem.Message, StringComparison.Ordinal);
        Assert.Contains("database 'app' (OID 16384)", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_renamed_database_is_the_same_database()
        => Assert.Null(Verify(new PersistedPosition(Lsn.Parse("1/0"), s_server with { Database = "before_rename" }), Source(Lsn.Parse("1/0"))));

    [Fact]
    public void A_slot_confirmed_past_the_position_means_lost_batches_unless_the_writer_discards()
    {
        var persisted = new PersistedPosition(Lsn.Parse("1/0"), s_server);

        var problem = Verify(persisted, Source(Lsn.Parse("1/100000")));

        Assert.Equal(PositionProblemKind.BehindSlot, problem!.Kind);
        Assert.Contains("confirmed up to 1/100000, 1 MiB past the persisted position 1/0", problem.Message, StringComparison.Ordinal);
        Assert.Contains("restored from an older backup", problem.Message, StringComparison.Ordinal);
        Assert.Contains("accept the gap: in the changelog database, DELETE FROM sync_wal_position WHERE slot_name = 'synchro_slot'", problem.Message, StringComparison.Ordinal);
        Assert.Null(Verify(persisted, Source(Lsn.Parse("1/100000")), slotConfirmsOnlyPersisted: false));
    }

    [Fact]
    public void After_a_promotion_a_position_up_to_the_fork_fits_and_one_past_it_is_refused_with_the_fork_to_resume_from()
    {
        var promoted = Source(Lsn.Parse("0/1500800"), s_server with { Timeline = 2 });
        var history = TimelineHistory.Parse(2, "1\t0/1516D20\tno recovery target specified\n"u8);

        Assert.Null(Verify(new PersistedPosition(Lsn.Parse("0/1516D20"), s_server), promoted, history));
        var problem = Verify(new PersistedPosition(Lsn.Parse("0/1517000"), s_server), promoted, history);

        Assert.Equal(PositionProblemKind.OffTimeline, problem!.Kind);
        Assert.Contains("whose history left timeline 1 at 0/1516D20, 736 bytes before the position", problem.Message, StringComparison.Ordinal);
        Assert.Contains("UPDATE sync_wal_position SET confirmed_lsn = ('0/1516D20'::pg_lsn - '0/0')::bigint, source_timeline = 2 WHERE slot_name = 'synchro_slot'", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_server_on_a_timeline_that_does_not_descend_from_the_positions_is_refused()
    {
        var problem = Verify(new PersistedPosition(Lsn.Parse("0/100"), s_server with { Timeline = 3 }), Source(null, s_server with { Timeline = 2 }));

        Assert.Equal(PositionProblemKind.OffTimeline, problem!.Kind);
        Assert.Contains("does not descend from it", problem.Message, StringComparison.Ordinal);
        // No slot on this server: nothing to drop in the rebuild.
        Assert.DoesNotContain("pg_drop_replication_slot", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_timeline_the_history_does_not_list_is_not_an_ancestor()
    {
        var history = TimelineHistory.Parse(5, "1\t0/100\tr\n4\t0/200\tr\n"u8);

        var problem = Verify(new PersistedPosition(Lsn.Parse("0/150"), s_server with { Timeline = 2 }), Source(null, s_server with { Timeline = 5 }), history);

        Assert.Equal(PositionProblemKind.OffTimeline, problem!.Kind);
        Assert.Contains("does not descend from it", problem.Message, StringComparison.Ordinal);
    }
}
