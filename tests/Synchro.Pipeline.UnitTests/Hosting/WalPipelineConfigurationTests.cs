using Microsoft.Extensions.Configuration;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Hosting;

public sealed class WalPipelineConfigurationTests
{
    private static IConfigurationSection Section(params (string Key, string? Value)[] settings)
        => new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build()
            .GetSection(WalPipelineConfiguration.DefaultSectionName);

    private static WalPipelineOptions Bind(IConfiguration section)
    {
        var options = new WalPipelineOptions();
        WalPipelineConfiguration.Bind(section, options);
        return options;
    }

    private static IReadOnlyList<string> Problems(params (string Key, string? Value)[] settings)
        => Assert.Throws<WalPipelineConfigurationException>(() => Bind(Section(settings))).Errors;

    [Fact]
    public void Binds_every_setting()
    {
        var options = Bind(Section(
            ("Synchro:ConnectionString", "Host=db;Database=app"),
            ("Synchro:ChangelogConnectionString", "Host=log;Database=changes"),
            ("Synchro:PrimaryConnectionString", "Host=primary;Database=app"),
            ("Synchro:SlotName", "synchro_slot"),
            ("Synchro:PublicationName", "synchro_pub"),
            ("Synchro:CreateSlotIfMissing", "false"),
            ("Synchro:MaxBatchRows", "500"),
            ("Synchro:MaxBatchBytes", "4MiB"),
            ("Synchro:BatchLinger", "250ms"),
            ("Synchro:WalBufferBytes", "65536"),
            ("Synchro:StatusInterval", "00:00:03"),
            ("Synchro:MaxReconnectDelay", "1.5m"),
            ("Synchro:SlowBatchThreshold", "2s"),
            ("Synchro:BinaryTupleMode", "true"),
            ("Synchro:Tables:orders:OwnerColumn", "user_id"),
            ("Synchro:Tables:orders:IdColumn", "order_id"),
            ("Synchro:Tables:orders:SoftDeleteColumn", "removed_at"),
            ("Synchro:Tables:orders:BucketPrefix", "owner:"),
            ("Synchro:Tables:app.lines:ParentTable", "orders"),
            ("Synchro:Tables:app.lines:ParentForeignKeyColumn", "order_id"),
            ("Synchro:Tables:app.lines:SoftDeleteColumn", ""),
            ("Synchro:Tables:rooms:BucketByColumn", "room"),
            ("Synchro:Tables:rooms:GlobalWhenBucketNull", "true")));

        Assert.Equal("Host=db;Database=app", options.ConnectionString);
        Assert.Equal("Host=log;Database=changes", options.ChangelogConnectionString);
        Assert.Equal("Host=primary;Database=app", options.PrimaryConnectionString);
        Assert.Equal("synchro_slot", options.SlotName);
        Assert.Equal("synchro_pub", options.PublicationName);
        Assert.False(options.CreateSlotIfMissing);
        Assert.Equal(500, options.MaxBatchRows);
        Assert.Equal(4L * 1024 * 1024, options.MaxBatchBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.BatchLinger);
        Assert.Equal(65536, options.WalBufferBytes);
        Assert.Equal(TimeSpan.FromSeconds(3), options.StatusInterval);
        Assert.Equal(TimeSpan.FromSeconds(90), options.MaxReconnectDelay);
        Assert.Equal(TimeSpan.FromSeconds(2), options.SlowBatchThreshold);
        Assert.True(options.BinaryTupleMode);

        Assert.Equal(3, options.Tables.Count);
        Assert.True(options.Tables.TryGet("public", "orders", out var orders));
        Assert.Equal(("order_id", "removed_at", "user_id", "owner:"), (orders.IdColumn, orders.SoftDeleteColumn, orders.OwnerColumn, orders.BucketPrefix));
        Assert.True(options.Tables.TryGet("app", "lines", out var lines));
        Assert.Equal(("orders", "order_id", null, "id"), (lines.ParentTable, lines.ParentForeignKeyColumn, lines.SoftDeleteColumn, lines.IdColumn));
        Assert.True(options.Tables.TryGet("public", "rooms", out var rooms));
        Assert.Equal(("room", true, "deleted_at", "user:"), (rooms.BucketByColumn, rooms.GlobalWhenBucketNull, rooms.SoftDeleteColumn, rooms.BucketPrefix));
        options.Validate();
    }

    [Fact]
    public void Binds_the_id_limits_and_checks_that_they_fit_the_changelogs_indexes_together()
    {
        var options = Bind(Section(
            ("Synchro:ConnectionString", "Host=db"), ("Synchro:SlotName", "s"), ("Synchro:PublicationName", "p"), ("Synchro:Tables:orders:OwnerColumn", "user_id"),
            ("Synchro:MaxRecordIdBytes", "256"), ("Synchro:MaxBucketIdBytes", "2300")));

        Assert.Equal((256, 2300), (options.MaxRecordIdBytes, options.MaxBucketIdBytes));
        Assert.Equal((1_024, 1_024), (new WalPipelineOptions().MaxRecordIdBytes, new WalPipelineOptions().MaxBucketIdBytes));
        options.Validate();

        options.MaxBucketIdBytes = 2301;
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("MaxRecordIdBytes + MaxBucketIdBytes is 2557; together they must be at most 2556, what the indexes of sync_bucket_edges hold next to the longest table name",
            error.Message, StringComparison.Ordinal);
        options.MaxRecordIdBytes = 0;
        options.MaxBucketIdBytes = -1;
        error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("MaxRecordIdBytes is 0; it must be at least 1", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxBucketIdBytes is -1; it must be at least 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Binds_the_bucket_rule_settings()
    {
        var options = Bind(Section(
            ("Synchro:GlobalBucketFunction", "rules.buckets"),
            ("Synchro:MaxBucketsPerChange", "50"),
            ("Synchro:Tables:docs:BucketFunction", "doc_buckets"),
            ("Synchro:Tables:notes:DecodeAllColumns", "true"),
            ("Synchro:Tables:notes:OwnerColumn", "owner")));

        Assert.Equal(("rules.buckets", 50), (options.Tables.GlobalBucketFunction, options.MaxBucketsPerChange));
        Assert.True(options.Tables.TryGet("public", "docs", out var docs));
        Assert.Equal("doc_buckets", options.Tables.BucketFunctionOf(docs));
        Assert.True(options.Tables.TryGet("public", "notes", out var notes));
        Assert.Equal(("rules.buckets", true), (options.Tables.BucketFunctionOf(notes), notes.DecodeAllColumns));
        Assert.Equal(1_000, new WalPipelineOptions().MaxBucketsPerChange);

        options.MaxBucketsPerChange = -1;
        options.Tables.GlobalBucketFunction = "rules.buckets()";
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("MaxBucketsPerChange is -1; it must be 0 (no limit) or more", error.Message, StringComparison.Ordinal);
        Assert.Contains("GlobalBucketFunction: 'rules.buckets()' is not a function name", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Binds_the_streaming_and_two_phase_settings()
    {
        var options = Bind(Section(
            ("Synchro:StreamLargeTransactions", "false"),
            ("Synchro:TwoPhase", "true"),
            ("Synchro:SpillDirectory", "/var/tmp/synchro")));

        Assert.False(options.StreamLargeTransactions);
        Assert.True(options.TwoPhase);
        Assert.Equal("/var/tmp/synchro", options.SpillDirectory);
        Assert.True(new WalPipelineOptions().StreamLargeTransactions);
        Assert.False(new WalPipelineOptions().TwoPhase);
        Assert.Null(Bind(Section(("Synchro:SpillDirectory", ""))).SpillDirectory);
        Assert.Equal(["Synchro:TwoPhase: 'maybe' is not true or false"], Problems(("Synchro:TwoPhase", "maybe")));
    }

    [Fact]
    public void Binds_the_spill_cap_as_a_size_with_0_for_none()
    {
        Assert.Equal(1L << 30, new WalPipelineOptions().MaxSpillBytes);
        Assert.Equal(256L << 20, Bind(Section(("Synchro:MaxSpillBytes", "256MiB"))).MaxSpillBytes);
        Assert.Equal(0, Bind(Section(("Synchro:MaxSpillBytes", "0"))).MaxSpillBytes);
        Assert.Equal(["Synchro:MaxSpillBytes: '2GB' is not a size in bytes; write a whole number of bytes, optionally with KiB, MiB or GiB (8MiB)"],
            Problems(("Synchro:MaxSpillBytes", "2GB")));
    }

    [Fact]
    public void Read_coalescing_is_off_unless_configured_on()
    {
        Assert.False(new WalPipelineOptions().ReadCoalescing);
        Assert.False(Bind(Section(("Synchro:SlotName", "s"))).ReadCoalescing);
        Assert.True(Bind(Section(("Synchro:ReadCoalescing", "true"))).ReadCoalescing);
        Assert.True(Bind(Section(("synchro:readcoalescing", "True"))).ReadCoalescing);
        Assert.False(Bind(Section(("Synchro:ReadCoalescing", "false"))).ReadCoalescing);
        Assert.Equal(["Synchro:ReadCoalescing: 'inline' is not true or false"], Problems(("Synchro:ReadCoalescing", "inline")));
        Assert.Equal(["Synchro:ReadCoalesce: unknown setting; did you mean ReadCoalescing?"], Problems(("Synchro:ReadCoalesce", "true")));
    }

    [Fact]
    public void Keys_are_case_insensitive_and_absent_keys_keep_their_defaults()
    {
        var defaults = new WalPipelineOptions();

        var options = Bind(Section(("SYNCHRO:SLOTNAME", "s1"), ("synchro:tables:orders:ownercolumn", "user_id")));

        Assert.Equal("s1", options.SlotName);
        Assert.Equal("user_id", Assert.Single(options.Tables).OwnerColumn);
        Assert.Equal((defaults.MaxBatchRows, defaults.MaxBatchBytes, defaults.BatchLinger, defaults.StatusInterval, defaults.CreateSlotIfMissing, defaults.ChangelogConnectionString),
            (options.MaxBatchRows, options.MaxBatchBytes, options.BatchLinger, options.StatusInterval, options.CreateSlotIfMissing, options.ChangelogConnectionString));
    }

    [Fact]
    public void A_later_source_overrides_one_table_setting_as_an_environment_variable_would()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([new("Synchro:Tables:orders:OwnerColumn", "user_id"), new("Synchro:Tables:orders:IdColumn", "order_id")])
            // What Synchro__Tables__orders__OwnerColumn=account_id becomes.
            .AddInMemoryCollection([new("Synchro:Tables:orders:OwnerColumn", "account_id")])
            .Build();

        var orders = Assert.Single(Bind(configuration.GetSection("Synchro")).Tables);

        Assert.Equal(("account_id", "order_id"), (orders.OwnerColumn, orders.IdColumn));
    }

    [Fact]
    public void An_entry_without_settings_registers_the_table_with_the_defaults()
    {
        var options = Bind(Section(("Synchro:Tables:tags", null), ("Synchro:Tables:categories:GlobalWhenBucketNull", "True")));

        Assert.True(options.Tables.TryGet("public", "tags", out var tags));
        Assert.Equal(("id", "deleted_at", null, false), (tags.IdColumn, tags.SoftDeleteColumn, tags.OwnerColumn, tags.GlobalWhenBucketNull));
        Assert.True(options.Tables.TryGet("public", "categories", out var categories));
        Assert.True(categories.GlobalWhenBucketNull);
    }

    [Fact]
    public void Tables_are_added_to_the_ones_registered_in_code()
    {
        var options = new WalPipelineOptions();
        options.Tables.Add(new TableRegistration("orders") { OwnerColumn = "user_id" });

        WalPipelineConfiguration.Bind(Section(("Synchro:Tables:lines:ParentTable", "orders"), ("Synchro:Tables:lines:ParentForeignKeyColumn", "order_id")), options);

        Assert.Equal(2, options.Tables.Count);
        options.Tables.Validate();
    }

    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("10s", 10_000)]
    [InlineData("10 s", 10_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("2m", 120_000)]
    [InlineData("2min", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1d", 86_400_000)]
    [InlineData("00:00:10", 10_000)]
    [InlineData("00:00:00.250", 250)]
    [InlineData("1.00:00:00", 86_400_000)]
    public void Durations_take_a_unit_or_the_clock_form(string text, int milliseconds)
        => Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), Bind(Section(("Synchro:BatchLinger", text))).BatchLinger);

    [Theory]
    [InlineData("1048576", 1L << 20)]
    [InlineData("64KiB", 64L << 10)]
    [InlineData("8 MiB", 8L << 20)]
    [InlineData("8mib", 8L << 20)]
    [InlineData("2GiB", 2L << 30)]
    [InlineData("4096B", 4096)]
    public void Byte_sizes_take_an_optional_binary_unit(string text, long bytes)
        => Assert.Equal(bytes, Bind(Section(("Synchro:WalBufferBytes", text))).WalBufferBytes);

    [Fact]
    public void Every_bad_value_is_reported_at_once_with_its_full_key_path()
    {
        var problems = Problems(
            ("Synchro:MaxBatchRows", "ten"),
            ("Synchro:MaxBatchBytes", "8MB"),
            ("Synchro:WalBufferBytes", "99999999999GiB"),
            ("Synchro:CreateSlotIfMissing", "yes"),
            ("Synchro:BatchLinger", "10"),
            ("Synchro:StatusInterval", "soon"),
            ("Synchro:MaxReconnectDelay", "99999999999d"),
            ("Synchro:Tables:orders:GlobalWhenBucketNull", "maybe"),
            ("Synchro:Tables:orders:IdColumn", ""));

        string[] expected =
        [
            "Synchro:MaxBatchRows: 'ten' is not a whole number (at most 2147483647)",
            "Synchro:MaxBatchBytes: '8MB' is not a size in bytes; write a whole number of bytes, optionally with KiB, MiB or GiB (8MiB)",
            "Synchro:WalBufferBytes: '99999999999GiB' is not a size in bytes; write a whole number of bytes, optionally with KiB, MiB or GiB (8MiB)",
            "Synchro:CreateSlotIfMissing: 'yes' is not true or false",
            "Synchro:BatchLinger: '10' is not a duration (a bare number has no unit); write 250ms, 10s, 5m, 1h or 00:00:10",
            "Synchro:StatusInterval: 'soon' is not a duration; write 250ms, 10s, 5m, 1h or 00:00:10",
            "Synchro:MaxReconnectDelay: '99999999999d' is not a duration; write 250ms, 10s, 5m, 1h or 00:00:10",
            "Synchro:Tables:orders:GlobalWhenBucketNull: 'maybe' is not true or false",
            "Synchro:Tables:orders:IdColumn: must name a column",
        ];
        // The binder follows the configuration's key order, which is the providers' business.
        Assert.Equal(expected.Order(StringComparer.Ordinal), problems.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_exception_message_lists_every_problem()
    {
        var error = Assert.Throws<WalPipelineConfigurationException>(() => Bind(Section(("Synchro:MaxBatchRows", "ten"), ("Synchro:SlotNmae", "s"))));

        Assert.Contains("Synchro:MaxBatchRows: 'ten' is not a whole number", error.Message, StringComparison.Ordinal);
        Assert.Contains("Synchro:SlotNmae: unknown setting; did you mean SlotName?", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_keys_are_errors_with_a_suggestion_or_the_known_names()
    {
        var problems = Problems(
            ("Synchro:SlotNmae", "s"),
            ("Synchro:Frobnicate", "1"),
            ("Synchro:Tables:orders:OwnerColum", "user_id"));

        Assert.Contains("Synchro:SlotNmae: unknown setting; did you mean SlotName?", problems);
        Assert.Contains("Synchro:Tables:orders:OwnerColum: unknown table setting; did you mean OwnerColumn?", problems);
        var unknown = Assert.Single(problems, p => p.StartsWith("Synchro:Frobnicate:", StringComparison.Ordinal));
        Assert.Contains("the known ones are ConnectionString, ChangelogConnectionString, SlotName", unknown, StringComparison.Ordinal);
    }

    [Fact]
    public void The_value_of_an_unknown_key_is_never_shown()
    {
        var error = Assert.Throws<WalPipelineConfigurationException>(() => Bind(Section(("Synchro:ConectionString", "Host=db;Password=hunter2"))));

        Assert.Contains("Synchro:ConectionString: unknown setting; did you mean ConnectionString?", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shapes_that_do_not_fit_are_errors()
    {
        var problems = Problems(
            ("Synchro:SlotName:inner", "x"),
            ("Synchro:Tables:orders", "user_id"),
            ("Synchro:Tables:a.b.c:OwnerColumn", "user_id"),
            ("Synchro:Tables:items:OwnerColumn", "user_id"),
            ("Synchro:Tables:public.items:OwnerColumn", "user_id"));

        Assert.Contains("Synchro:SlotName: expected a value, found a section (inner)", problems);
        Assert.Contains(problems, p => p.StartsWith("Synchro:Tables:orders: expected the table's settings", StringComparison.Ordinal));
        Assert.Contains("Synchro:Tables:a.b.c: 'a.b.c' is not a table name; use 'table' or 'schema.table'", problems);
        Assert.Contains(problems, p => p.Contains("table public.items is configured twice", StringComparison.Ordinal));
        Assert.Equal(4, problems.Count);
    }

    [Fact]
    public void A_value_in_place_of_the_section_is_an_error()
    {
        var problems = Problems(("Synchro", "Host=db"));

        Assert.StartsWith("Synchro: expected a section of settings", Assert.Single(problems), StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_values_mean_none_where_none_is_allowed()
    {
        var options = Bind(Section(("Synchro:ChangelogConnectionString", ""), ("Synchro:Tables:orders:SoftDeleteColumn", ""), ("Synchro:Tables:orders:OwnerColumn", "u")));

        Assert.Null(options.ChangelogConnectionString);
        Assert.Null(Assert.Single(options.Tables).SoftDeleteColumn);
    }

    [Fact]
    public void A_root_configuration_binds_keys_without_a_section_prefix()
    {
        var root = new ConfigurationBuilder().AddInMemoryCollection([new("SlotName", "s2"), new("MaxBatchRows", "x")]).Build();

        var error = Assert.Throws<WalPipelineConfigurationException>(() => Bind(root));

        Assert.Equal("MaxBatchRows: 'x' is not a whole number (at most 2147483647)", Assert.Single(error.Errors));
    }

    [Fact]
    public void Binds_composite_ids_and_parent_keys_from_json_lists()
    {
        var json = """
            {
              "Synchro": {
                "Tables": {
                  "docs": { "IdColumns": ["tenant_id", "id"], "OwnerColumn": "owner" },
                  "pages": { "IdColumns": ["tenant_id", "id"], "ParentTable": "docs", "ParentForeignKeyColumns": ["tenant_id", "doc_id"] },
                  "notes": { "IdColumns": ["id"], "GlobalWhenBucketNull": true }
                }
              }
            }
            """;
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build();

        var options = Bind(configuration.GetSection("Synchro"));

        Assert.True(options.Tables.TryGet("public", "docs", out var docs));
        Assert.Equal(["tenant_id", "id"], docs.IdColumns);
        Assert.True(options.Tables.TryGet("public", "pages", out var pages));
        Assert.Equal(["tenant_id", "id"], pages.IdColumns);
        Assert.Equal(["tenant_id", "doc_id"], pages.ParentForeignKeyColumns!);
        Assert.True(options.Tables.TryGet("public", "notes", out var notes));
        Assert.Equal(("id", false), (notes.IdColumn, notes.HasCompositeId));
        options.Tables.Validate();
    }

    [Fact]
    public void Column_lists_also_take_one_comma_separated_value_as_an_environment_variable_would()
    {
        (string Key, string? Value)[] settings =
        [
            ("Synchro:Tables:docs:IdColumns", "tenant_id, id"),
            ("Synchro:Tables:docs:OwnerColumn", "owner"),
            ("Synchro:Tables:pages:ParentTable", "docs"),
            ("Synchro:Tables:pages:ParentForeignKeyColumns", "tenant_id,doc_id"),
            // Indexed keys in numeric order, as Synchro__Tables__lines__IdColumns__0... give them.
            .. Enumerable.Range(0, 11).Select(i => ($"Synchro:Tables:lines:IdColumns:{i}", (string?)$"c{i}")),
            ("Synchro:Tables:lines:OwnerColumn", "owner"),
        ];
        var options = Bind(Section(settings));

        Assert.True(options.Tables.TryGet("public", "docs", out var docs));
        Assert.Equal(["tenant_id", "id"], docs.IdColumns);
        Assert.True(options.Tables.TryGet("public", "pages", out var pages));
        Assert.Equal(["tenant_id", "doc_id"], pages.ParentForeignKeyColumns!);
        Assert.True(options.Tables.TryGet("public", "lines", out var lines));
        Assert.Equal(Enumerable.Range(0, 11).Select(i => $"c{i}"), lines.IdColumns);
    }

    [Fact]
    public void Bad_column_lists_and_both_forms_at_once_are_errors()
    {
        var problems = Problems(
            ("Synchro:Tables:a:IdColumns", ""),
            ("Synchro:Tables:b:IdColumns", "x,,y"),
            ("Synchro:Tables:c:IdColumns", "x, x"),
            ("Synchro:Tables:d:IdColumns:0:inner", "x"),
            ("Synchro:Tables:e:IdColumn", "id"),
            ("Synchro:Tables:e:IdColumns", "tenant_id, id"),
            ("Synchro:Tables:f:ParentForeignKeyColumn", "doc_id"),
            ("Synchro:Tables:f:ParentForeignKeyColumns", "tenant_id, doc_id"));

        Assert.Equal(
        [
            "Synchro:Tables:a:IdColumns: must name one or more columns, none of them empty",
            "Synchro:Tables:b:IdColumns: must name one or more columns, none of them empty",
            "Synchro:Tables:c:IdColumns: names a column twice",
            "Synchro:Tables:d:IdColumns: expected a list of column names, found a section",
            "Synchro:Tables:e: both IdColumn and IdColumns are set; keep IdColumns for an id of several columns, or IdColumn for one",
            "Synchro:Tables:f: both ParentForeignKeyColumn and ParentForeignKeyColumns are set; keep ParentForeignKeyColumns for a parent key of several columns, or ParentForeignKeyColumn for one",
        ], problems);
    }
}
