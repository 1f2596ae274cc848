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

    [Fact]
    public void A_composite_id_comes_first_among_the_referenced_columns()
    {
        var docs = new TableRegistration("docs") { IdColumns = ["tenant_id", "id"], OwnerColumn = "owner" };
        var lines = new TableRegistration("lines") { IdColumns = ["tenant_id", "line_no"], ParentTable = "docs", ParentForeignKeyColumns = ["tenant_id", "doc_id"] };

        Assert.True(docs.HasCompositeId);
        Assert.Equal(["tenant_id", "id"], docs.IdColumns);
        Assert.Equal(["tenant_id", "id", "deleted_at", "owner"], docs.ReferencedColumns);
        Assert.Equal(["tenant_id", "line_no", "deleted_at", "doc_id"], lines.ReferencedColumns);
        // Code that assumes one column learns otherwise at once, rather than reading a part of the id.
        Assert.Contains("IdColumns", Assert.Throws<InvalidOperationException>(() => docs.IdColumn).Message, StringComparison.Ordinal);
        Assert.Contains("ParentForeignKeyColumns", Assert.Throws<InvalidOperationException>(() => lines.ParentForeignKeyColumn).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_id_column_in_either_form_is_the_plain_id()
    {
        var byName = new TableRegistration("a") { IdColumn = "code" };
        var byList = new TableRegistration("b") { IdColumns = ["code"], ParentTable = "a", ParentForeignKeyColumns = ["a_code"] };

        Assert.Equal(("code", false), (byName.IdColumn, byName.HasCompositeId));
        Assert.Equal(("code", false, "a_code"), (byList.IdColumn, byList.HasCompositeId, byList.ParentForeignKeyColumn));
        Assert.Equal(["id"], new TableRegistration("c").IdColumns);
        Assert.Null(new TableRegistration("c").ParentForeignKeyColumns);
    }

    [Fact]
    public void Id_column_lists_must_name_distinct_columns()
    {
        Assert.Throws<ArgumentException>(() => new TableRegistration("t") { IdColumns = [] });
        Assert.Throws<ArgumentException>(() => new TableRegistration("t") { IdColumns = ["a", ""] });
        Assert.Throws<ArgumentException>(() => new TableRegistration("t") { IdColumns = ["a", "a"] });
        Assert.Throws<ArgumentException>(() => new TableRegistration("t") { IdColumn = "" });
        Assert.Throws<ArgumentException>(() => new TableRegistration("t") { ParentForeignKeyColumns = [] });
    }

    [Fact]
    public void A_composite_parent_chain_passes_when_each_key_matches_its_parents_id()
    {
        var registry = new TableRegistry()
            .Add(new TableRegistration("docs") { IdColumns = ["tenant_id", "id"], OwnerColumn = "owner" })
            .Add(new TableRegistration("pages") { IdColumns = ["tenant_id", "id"], ParentTable = "docs", ParentForeignKeyColumns = ["tenant_id", "doc_id"] })
            .Add(new TableRegistration("notes") { ParentTable = "pages", ParentForeignKeyColumns = ["tenant_id", "page_id"] });

        registry.Validate();
    }

    [Fact]
    public void Reports_a_parent_key_that_does_not_match_the_parents_id_and_ids_set_twice()
    {
        var registry = new TableRegistry()
            .Add(new TableRegistration("docs") { IdColumns = ["tenant_id", "id"], OwnerColumn = "owner" })
            .Add(new TableRegistration("pages") { ParentTable = "docs", ParentForeignKeyColumn = "doc_id" })
            .Add(new TableRegistration("users") { OwnerColumn = "id" })
            .Add(new TableRegistration("avatars") { ParentTable = "users", ParentForeignKeyColumns = ["tenant_id", "user_id"] })
            .Add(new TableRegistration("twice") { IdColumn = "id", IdColumns = ["a", "b"], OwnerColumn = "o" })
            .Add(new TableRegistration("keys") { ParentTable = "docs", ParentForeignKeyColumn = "doc_id", ParentForeignKeyColumns = ["tenant_id", "doc_id"] })
            .Add(new TableRegistration("loose") { ParentForeignKeyColumns = ["tenant_id", "doc_id"], OwnerColumn = "o" });

        var error = Assert.Throws<ArgumentException>(registry.Validate);

        Assert.Contains("public.pages: its parent public.docs is identified by 2 columns (tenant_id, id), but public.pages names 1 (doc_id); set ParentForeignKeyColumns", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.avatars: its parent public.users is identified by one column (id), but public.avatars names 2 (tenant_id, user_id); set ParentForeignKeyColumn", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.twice: both IdColumn and IdColumns are set", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.keys: both ParentForeignKeyColumn and ParentForeignKeyColumns are set", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.loose: ParentForeignKeyColumns 'tenant_id, doc_id' is set without ParentTable", error.Message, StringComparison.Ordinal);
    }
}
