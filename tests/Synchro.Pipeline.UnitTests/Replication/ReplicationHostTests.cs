using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>Multi-host connection strings: sessions that find a promoted standby within a second (docs/failover.md).</summary>
public sealed class ReplicationHostTests
{
    [Theory]
    [InlineData("Host=db", "Host=db")]
    [InlineData("Host=a:5432,b:5432;Target Session Attributes=primary", "Host=a:5432,b:5432;Target Session Attributes=primary;Host Recheck Seconds=1")]
    [InlineData("Host=a:5432,b:5432;Host Recheck Seconds=30", "Host=a:5432,b:5432;Host Recheck Seconds=30")]
    public void Sessions_of_several_hosts_recheck_each_host_role_within_a_second_unless_told_otherwise(string given, string used)
        => Assert.Equal(used, ReplicationHost.WithPromptRecheck(given));
}
