using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Options;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>The pieces of the failover checks and invalidation messages that read server text and configuration.</summary>
public sealed class FailoverSettingsTests
{
    [Fact]
    public void The_other_hosts_of_a_multi_host_connection_string_keep_their_own_ports_or_the_common_one()
    {
        var hosts = FailoverChecks.OtherHosts("Host=db1:5433,db2,[::1]:5434,db3:5432;Port=5432;Database=app", "db3", 5432);

        Assert.Equal([("db1", 5433), ("db2", 5432), ("::1", 5434)], hosts);
    }

    [Theory]
    [InlineData("host=primary port=5432 user=rep dbname=postgres", true)]
    [InlineData("host=primary dbname = 'app db' user=rep", true)]
    [InlineData("postgresql://rep@primary:5432/postgres?sslmode=require", true)]
    [InlineData("postgresql://rep@primary:5432?dbname=app", true)]
    [InlineData("host=primary port=5432 user=rep application_name=standby_one", false)]
    [InlineData("postgresql://rep@primary:5432", false)]
    [InlineData("host=primary options='-c mydbname=x'", false)]
    public void Primary_conninfo_names_a_database_in_either_form(string conninfo, bool named)
        => Assert.Equal(named, FailoverChecks.NamesDatabase(conninfo));

    [Fact]
    public void Synchronized_standby_slots_are_split_and_unquoted()
        => Assert.Equal(["standby_one", "Standby_Two"], FailoverChecks.SlotList(" standby_one, \"Standby_Two\" "));

    [Theory]
    [InlineData("This replication slot has been invalidated due to \"idle_timeout\".", "idle_timeout")]
    [InlineData("This replication slot has been invalidated due to \"wal_removed\".", "wal_removed")]
    [InlineData("Detail redacted as it may contain sensitive data. Specify 'Include Error Detail' in the connection string to include this information.", null)]
    [InlineData(null, null)]
    public void The_reason_is_read_from_the_servers_detail_when_it_is_shown(string? detail, string? reason)
        => Assert.Equal(reason, SlotInvalidation.ReasonInDetail(detail));

    [Theory]
    [InlineData(SlotInvalidation.WalRemoved, "raise max_slot_wal_keep_size")]
    [InlineData(SlotInvalidation.RowsRemoved, "hot_standby_feedback = on")]
    [InlineData(SlotInvalidation.WalLevelInsufficient, "keep wal_level = logical on the primary")]
    [InlineData(SlotInvalidation.IdleTimeout, "raise idle_replication_slot_timeout")]
    [InlineData(null, "raise max_slot_wal_keep_size")]
    public void Every_reason_has_its_own_fix_and_the_common_recovery(string? reason, string fix)
    {
        var message = SlotInvalidation.Message("s", reason, SlotInvalidation.Observed(reason));

        Assert.Contains(fix, message, StringComparison.Ordinal);
        Assert.Contains("SELECT pg_drop_replication_slot('s')", message, StringComparison.Ordinal);
        Assert.Contains("resync clients", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Failover_and_the_standbys_bind_from_configuration()
    {
        var options = OptionsBinding.Bind(
            ("Synchro:Failover", "true"),
            ("Synchro:FailoverStandbys:0", "Host=standby1;Database=app"),
            ("Synchro:FailoverStandbys:1", "Host=standby2,standby3;Database=app"));

        Assert.True(options.Failover);
        Assert.Equal(["Host=standby1;Database=app", "Host=standby2,standby3;Database=app"], options.FailoverStandbys);
    }
}
