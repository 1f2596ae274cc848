using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Registry;

public sealed class TableRegistryTests
{
    [Fact]
    public void Names_default_to_the_public_schema_and_the_reference_defaults()
    {
        var table = new TableRegistration("orders") { OwnerColumn = "user_id" };

        Assert.Equal("public", table.Schema);
        Assert.Equal("orders", table.Name);
        Assert.Equal("public.orders", table.QualifiedName);
        Assert.Equal("id", table.IdColumn);
        Assert.Equal("deleted_at", table.SoftDeleteColumn);
        Assert.Equal("user:", table.BucketPrefix);
        Assert.Equal("user_id", table.BucketColumn);
        Assert.Equal(["id", "deleted_at", "user_id"], table.ReferencedColumns);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("a.b.c")]
    [InlineData(".orders")]
    [InlineData("sales.")]
    public void Rejects_names_that_are_not_tables(string name)
        => Assert.Throws<ArgumentException>(() => new TableRegistration(name));

    [Fact]
    public void Bucket_by_column_takes_precedence_over_the_owner_column()
        => Assert.Equal("team_id", new TableRegistration("docs") { OwnerColumn = "user_id", BucketByColumn = "team_id" }.BucketColumn);

    [Fact]
    public void A_valid_parent_chain_passes()
    {
        var registry = new TableRegistry()
            .Add(new TableRegistration("sales.orders") { OwnerColumn = "user_id" })
            .Add(new TableRegistration("sales.order_lines") { ParentTable = "sales.orders", ParentForeignKeyColumn = "order_id" })
            .Add(new TableRegistration("sales.line_notes") { ParentTable = "sales.order_lines", ParentForeignKeyColumn = "line_id" })
            .Add(new TableRegistration("categories") { GlobalWhenBucketNull = true });

        registry.Validate();

        Assert.True(registry.TryGet("sales", "line_notes", out var notes));
        Assert.Equal("sales.order_lines", registry.ParentOf(notes)!.QualifiedName);
        Assert.Equal(4, registry.Count);
    }

    [Fact]
    public void Reports_every_problem_with_its_fix()
    {
        var registry = new TableRegistry()
            .Add(new TableRegistration("orphans") { ParentTable = "missing", ParentForeignKeyColumn = "missing_id" })
            .Add(new TableRegistration("a") { ParentTable = "b", ParentForeignKeyColumn = "b_id" })
            .Add(new TableRegistration("b") { ParentTable = "a", ParentForeignKeyColumn = "a_id" })
            .Add(new TableRegistration("ownerless"))
            .Add(new TableRegistration("child") { ParentTable = "ownerless", ParentForeignKeyColumn = "ownerless_id" })
            .Add(new TableRegistration("half") { ParentTable = "a" });

        var error = Assert.Throws<ArgumentException>(registry.Validate);

        Assert.Contains("public.orphans: ParentTable 'missing' is not registered", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.a: the parent chain has a cycle (public.a -> public.b -> public.a)", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.ownerless: no OwnerColumn, BucketByColumn, ParentTable or BucketFunction", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.child: its parent chain ends at public.ownerless, which has no OwnerColumn or BucketByColumn", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.half: ParentTable 'a' is set without ParentForeignKeyColumn", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_registry_is_invalid()
        => Assert.Contains("no table is registered", Assert.Throws<ArgumentException>(new TableRegistry().Validate).Message, StringComparison.Ordinal);

    [Fact]
    public void A_table_cannot_be_registered_twice()
        => Assert.Throws<ArgumentException>(() => new TableRegistry().Add(new TableRegistration("t") { OwnerColumn = "o" }).Add(new TableRegistration("public.t")));
}
