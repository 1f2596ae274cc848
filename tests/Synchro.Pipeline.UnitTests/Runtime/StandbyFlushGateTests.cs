using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Runtime;

namespace Synchro.Pipeline.Tests.Runtime;

/// <summary>
/// The failover confirm rule's reading of the primary (docs/failover.md): which standby slots it waits for, and how far all of
/// them have flushed; a slot that cannot report holds every confirm.
/// </summary>
public sealed class StandbyFlushGateTests
{
    [Theory]
    [InlineData("", new string[0])]
    [InlineData("standby_a", new[] { "standby_a" })]
    [InlineData(" Standby_A , \"Mixed Case\",b ", new[] { "standby_a", "Mixed Case", "b" })]
    [InlineData(",,a,", new[] { "a" })]
    public void The_slot_list_is_read_as_the_server_reads_an_identifier_list(string setting, string[] slots)
        => Assert.Equal(slots, StandbyFlushGate.ParseSlotList(setting));

    [Fact]
    public void The_standbys_have_flushed_what_the_slowest_named_physical_slot_has()
    {
        var flush = StandbyFlushGate.Evaluate(Lsn.Parse("0/3000"), ["a", "b"], ["a", "b", "other", "logical"], ["physical", "physical", "physical", "logical"], ["0/3000", "0/2000", "0/1000", "0/500"]);
        Assert.Equal(Lsn.Parse("0/2000"), flush.StandbysFlushed);
        Assert.Equal("b at 0/2000", flush.Behind);
    }

    [Theory]
    [InlineData("missing", "missing (no such slot)")]
    [InlineData("logical", "logical (a logical slot, not a standby's)")]
    [InlineData("unused", "unused (never used by a standby)")]
    public void A_named_slot_that_cannot_report_holds_every_confirm(string slot, string behind)
    {
        var flush = StandbyFlushGate.Evaluate(Lsn.Parse("0/3000"), ["a", slot], ["a", "logical", "unused"], ["physical", "logical", "physical"], ["0/3000", "0/3000", null]);
        Assert.False(flush.StandbysFlushed.IsValid);
        Assert.Equal(behind, flush.Behind);
    }

    [Fact]
    public void No_named_slot_means_nothing_to_wait_for()
    {
        var flush = StandbyFlushGate.Evaluate(Lsn.Parse("0/3000"), [], ["a"], ["physical"], ["0/1000"]);
        Assert.Empty(flush.Slots);
        Assert.Equal("", flush.Behind);
    }
}
