using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Options;

public sealed class WalPipelineOptionsTests
{
    private static TableRegistry Tables() => new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "user_id" });

    [Fact]
    public void Valid_options_pass()
        => new WalPipelineOptions { ConnectionString = "Host=localhost", SlotName = "synchro_1", PublicationName = "pub", Tables = Tables() }.Validate();

    [Fact]
    public void Every_bad_option_is_named_at_once()
    {
        var options = new WalPipelineOptions
        {
            ConnectionString = "Host=localhost;Nonsense=1",
            SlotName = "Bad-Slot",
            PublicationName = "",
            Tables = new TableRegistry(),
            MaxBatchRows = 0,
            WalBufferBytes = 10,
            StatusInterval = TimeSpan.Zero,
        };

        var error = Assert.Throws<ArgumentException>(() => new WalPipeline(options));

        foreach (var name in new[] { "ConnectionString", "SlotName 'Bad-Slot'", "PublicationName", "Tables", "MaxBatchRows", "WalBufferBytes", "StatusInterval" })
            Assert.Contains(name, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_spill_cap_is_0_for_none_or_at_least_1_MiB()
    {
        WalPipelineOptions With(long cap) => new() { ConnectionString = "Host=localhost", SlotName = "s", PublicationName = "p", Tables = Tables(), MaxSpillBytes = cap };

        With(0).Validate();
        With(1024 * 1024).Validate();
        var error = Assert.Throws<ArgumentException>(With(1000).Validate);
        Assert.Contains("MaxSpillBytes is 1000; it must be 0 (no cap) or at least 1 MiB (1048576)", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(With(-1).Validate);
    }

    [Fact]
    public void A_password_never_appears_in_the_error()
    {
        var options = new WalPipelineOptions { ConnectionString = "Host=localhost;Password=hunter2;Bogus=x", SlotName = "s", PublicationName = "p", Tables = Tables() };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }
}
