using System.Text;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Partitions;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Spill;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>The spill format and store: changes read back exactly, subtransaction rollbacks cut the right tail, damage is reported.</summary>
public sealed class SpillStoreTests : IDisposable
{
    private static readonly TableRegistration s_orders = new("orders") { OwnerColumn = "user_id" };
    private static readonly TableRegistration s_lines = new("app.lines") { ParentTable = "orders", ParentForeignKeyColumn = "order_id", SoftDeleteColumn = null };
    private static readonly TableRegistry s_registry = new TableRegistry().Add(s_orders).Add(s_lines);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"synchro-spill-unit-{Guid.NewGuid():N}");
    private readonly ChangeBatchPool _pool = new();

    private static readonly BatchLimits s_chunkLimits = new(10_000, 1 << 20);

    [Fact]
    public void Changes_are_read_back_with_their_tables_operations_and_values()
    {
        using var stream = new MemoryStream();
        var batch = _pool.Rent();
        Add(batch, s_orders, ChangeOperation.Insert, "o1", null, "alice");
        Add(batch, s_lines, ChangeOperation.Update, "l1", "o1");
        Add(batch, s_orders, ChangeOperation.Delete, "o2", "2026-01-01", TupleValueKind.UnchangedToast);
        Add(batch, s_orders, ChangeOperation.Update, "ü-∑", null, "");
        new SpillRecordWriter(stream).Append(batch);
        stream.Position = 0;

        Assert.Equal(Describe(batch), Describe(ReadAll(stream)));
    }

    [Fact]
    public void Rolling_back_a_subtransaction_cuts_its_changes_and_those_after_it_but_keeps_earlier_ones()
    {
        var statistics = new SpillStatistics();
        using var store = new SpillStore(_directory, s_registry, statistics, s_chunkLimits);
        const uint Top = 700, Sub1 = 701, Sub2 = 702;
        Append(store, Top, Top, s_orders, "a");
        Append(store, Top, Sub1, s_orders, "b");
        // The lines table appears first inside the rolled-back subtransaction: its table record goes with it.
        Append(store, Top, Sub1, s_lines, "c");
        Append(store, Top, Sub2, s_orders, "d");
        store.AbortSubtransaction(Top, Sub1);
        Append(store, Top, Top, s_lines, "e");
        Append(store, Top, 703, s_orders, "f");
        store.AbortSubtransaction(Top, 999);

        using var replay = store.OpenReplay(Top)!;
        var batch = _pool.Rent();
        while (replay.Reader.TryRead(batch, out _))
        {
        }
        Assert.Equal(["orders Insert a", "app.lines Insert e", "orders Insert f"], Describe(batch).Select(d => d[..d.LastIndexOf(' ')]));
        Assert.Equal(1, statistics.FilesCreated);
        Assert.True(statistics.LargestFileBytes > statistics.BytesSpilled / 2);
    }

    [Fact]
    public void A_prepared_transaction_reads_back_in_pieces_of_whole_records_that_one_continued_reader_reads_as_the_whole()
    {
        // Pieces of one change: every change ends one, except where a rolled-back subtransaction takes the boundaries back.
        using var store = new SpillStore(_directory, s_registry, new SpillStatistics(), new BatchLimits(MaxRows: 1, MaxBytes: 1 << 20));
        const uint Top = 800, Sub = 801;
        Append(store, Top, Top, s_orders, "a");
        Append(store, Top, Top, s_lines, "b");
        Append(store, Top, Sub, s_orders, "c");
        Append(store, Top, Sub, s_lines, "d");
        store.AbortSubtransaction(Top, Sub);
        store.AppendTruncate(Top, Top, [new(s_lines, null)], Synchro.Pipeline.Protocol.Messages.TruncateOptions.Cascade);
        Append(store, Top, Top, s_orders, "e");
        // One partition of a table, and the whole of another, in one TRUNCATE.
        store.AppendTruncate(Top, Top, [new(s_orders, new PartitionFilter("\"public\".\"orders_2026\"", "record_id > 'é'", null)), new(s_lines, null)], default);

        using var chunks = store.OpenChunks(Top)!;
        var pieces = new List<byte[]>();
        while (chunks.TryRead(out var piece))
            pieces.Add(piece);
        Assert.Equal(4, pieces.Count);

        var batch = _pool.Rent();
        var truncates = new List<string>();
        SpillRecordReader? reader = null;
        foreach (var piece in pieces)
        {
            if (reader is null)
                reader = new SpillRecordReader(new MemoryStream(piece), s_registry, "piece");
            else
                reader.Continue(new MemoryStream(piece), "piece");
            while (reader.TryRead(batch, out _))
            {
                if (reader.TakeTruncate(out var tables, out var options))
                    truncates.Add($"{string.Join(",", tables.Select(t => t.Table.ChangelogName + (t.Partition is { } p ? $" [{p.Name}: {p.Predicate}]" : "")))} {options}");
            }
        }
        Assert.Equal(["orders Insert a", "app.lines Insert b", "orders Insert e"], Describe(batch).Select(d => d[..d.LastIndexOf(' ')]));
        Assert.Equal(["app.lines Cascade", "orders [\"public\".\"orders_2026\": record_id > 'é'],app.lines None"], truncates);
        batch.Release();
    }

    [Fact]
    public void A_whole_abort_deletes_the_file_and_a_new_store_empties_the_directory()
    {
        using (var store = new SpillStore(_directory, s_registry, new SpillStatistics(), s_chunkLimits))
        {
            Append(store, 1, 1, s_orders, "a");
            Append(store, 2, 2, s_orders, "b");
            Assert.Equal(2, Directory.GetFiles(_directory).Length);
            store.Delete(1);
            Assert.Single(Directory.GetFiles(_directory));
        }
        File.WriteAllText(Path.Combine(_directory, "left-over.spill"), "x");

        using var fresh = new SpillStore(_directory, s_registry, new SpillStatistics(), s_chunkLimits);

        Assert.Empty(Directory.GetFiles(_directory));
        Assert.Null(fresh.OpenReplay(2));
    }

    [Fact]
    public void Damaged_or_foreign_records_fail_with_the_source_named()
    {
        using var stream = new MemoryStream();
        var batch = _pool.Rent();
        Add(batch, s_orders, ChangeOperation.Insert, "o1", null, "alice");
        new SpillRecordWriter(stream).Append(batch);
        var bytes = stream.ToArray();

        var truncated = Assert.Throws<SpillDamagedException>(() => ReadAll(new MemoryStream(bytes[..^2]), "file X"));
        Assert.Contains("file X", truncated.Message, StringComparison.Ordinal);
        Assert.Contains("the stream ends inside a record", truncated.Message, StringComparison.Ordinal);

        var otherRegistry = new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "owner" });
        var foreign = Assert.Throws<WalPipelineException>(() =>
        {
            var reader = new SpillRecordReader(new MemoryStream(bytes), otherRegistry, "file Y");
            reader.TryRead(_pool.Rent(), out _);
        });
        Assert.Contains("public.orders", foreign.Message, StringComparison.Ordinal);
        Assert.Contains("Restore that table's registration", foreign.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    private void Append(SpillStore store, uint xid, uint subXid, TableRegistration table, string id)
    {
        var staging = _pool.Rent();
        Add(staging, table, ChangeOperation.Insert, id, table == s_orders ? null : "o1", table == s_orders ? "alice" : null);
        store.Append(xid, subXid, staging);
        staging.Release();
    }

    private ChangeBatch ReadAll(Stream stream, string source = "test")
    {
        var batch = _pool.Rent();
        var reader = new SpillRecordReader(stream, s_registry, source);
        while (reader.TryRead(batch, out _))
        {
        }
        return batch;
    }

    /// <summary>Adds a change whose referenced columns are <paramref name="values"/> (a string is text, null is NULL, a kind is that kind).</summary>
    private static void Add(ChangeBatch batch, TableRegistration table, ChangeOperation operation, params object?[] values)
    {
        var first = batch.ValueMark.Values;
        for (var i = 0; i < table.ReferencedColumns.Count; i++)
        {
            var value = i < values.Length ? values[i] : null;
            if (value is string text)
                batch.AddText(Encoding.UTF8.GetBytes(text));
            else
                batch.AddEmpty(value is TupleValueKind kind ? kind : TupleValueKind.Null);
        }
        batch.Add(new DecodedChange(table, operation, first));
    }

    private static List<string> Describe(ChangeBatch batch)
    {
        var rows = new List<string>();
        for (var i = 0; i < batch.Count; i++)
        {
            var change = batch[i];
            var values = Enumerable.Range(0, change.Table.ReferencedColumns.Count)
                .Select(c => batch.Value(change, c) is { Kind: TupleValueKind.Text } v ? "'" + Encoding.UTF8.GetString(batch.Text(v)) + "'" : batch.Value(change, c).Kind.ToString());
            rows.Add($"{change.Table.ChangelogName} {change.Operation} {batch.RecordId(i)} [{string.Join(",", values)}]");
        }
        return rows;
    }
}
