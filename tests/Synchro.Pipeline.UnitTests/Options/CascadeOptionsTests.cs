using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Registry;

using static Synchro.Pipeline.Tests.Options.OptionsBinding;

namespace Synchro.Pipeline.Tests.Options;

/// <summary><see cref="WalPipelineOptions.CascadeParentMoves"/>: default, binding, and which tables cascade.</summary>
public sealed class CascadeOptionsTests
{
    [Fact]
    public void Parent_moves_cascade_by_default_and_the_setting_binds()
    {
        Assert.True(new WalPipelineOptions().CascadeParentMoves);
        Assert.False(Bind(("Synchro:CascadeParentMoves", "false")).CascadeParentMoves);
        Assert.True(Bind(("Synchro:CascadeParentMoves", "true")).CascadeParentMoves);
        var error = Assert.Throws<WalPipelineConfigurationException>(() => Bind(("Synchro:CascadeParentMoves", "maybe")));
        Assert.Contains("Synchro:CascadeParentMoves", Assert.Single(error.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Only_children_that_inherit_through_the_chain_cascade()
    {
        var registry = new TableRegistry()
            .Add(new TableRegistration("orders") { OwnerColumn = "user_id" })
            .Add(new TableRegistration("order_lines") { ParentTable = "orders", ParentForeignKeyColumn = "order_id" })
            .Add(new TableRegistration("app.notes") { ParentTable = "order_lines", ParentForeignKeyColumn = "line_id" })
            .Add(new TableRegistration("owned_children") { ParentTable = "orders", ParentForeignKeyColumn = "order_id", OwnerColumn = "user_id" })
            .Add(new TableRegistration("function_children") { ParentTable = "orders", ParentForeignKeyColumn = "order_id", BucketFunction = "f" })
            .Add(new TableRegistration("categories"));
        var cascade = new ParentMoveCascade(registry);

        Assert.True(cascade.IsNeeded);
        Assert.True(cascade.HasChildren("orders"));
        Assert.True(cascade.HasChildren("order_lines"));
        Assert.False(cascade.HasChildren("app.notes"));
        Assert.False(cascade.HasChildren("categories"));

        // A global function decides every table without a function of its own: nothing inherits.
        registry.GlobalBucketFunction = "g";
        Assert.False(new ParentMoveCascade(registry).IsNeeded);
    }
}
