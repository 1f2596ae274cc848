using System.Text;
using System.Text.Json;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Buckets;

/// <summary>A rule failure's row as JSON: always what jsonb holds, never more than 64 KiB.</summary>
public sealed class RowJsonTests
{
    private const uint Int4 = 23;
    private const uint Text = 25;
    private const uint Json = 114;

    private static readonly TableRegistration s_table = new("docs") { OwnerColumn = "owner", SoftDeleteColumn = null, DecodeAllColumns = true };
    private readonly ChangeBatchPool _pool = new();

    [Theory]
    [InlineData("""{"a": "\u0000"}""", true)]
    [InlineData("""{"\u0000": 1}""", true)]
    [InlineData("""["\ud800"]""", true)]
    [InlineData("""["\udc00\ud800"]""", true)]
    [InlineData("""["\ud800x"]""", true)]
    [InlineData("""["\ud83d\ude00"]""", false)]
    [InlineData("""["\\u0000"]""", false)]
    [InlineData("""["\\\u0000"]""", true)]
    [InlineData("""["\u00e9", "\n"]""", false)]
    [InlineData("""{"plain": [1, 2, true]}""", false)]
    public void Jsonb_refuses_NUL_and_unpaired_surrogate_escapes_and_nothing_else(string json, bool refused)
        => Assert.Equal(refused, RowJson.JsonbCannotHold(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public void A_json_value_jsonb_refuses_is_kept_as_text_and_marked()
    {
        var batch = Batch(["1", "alice", """{"a": "x\u0000y"}"""]);
        try
        {
            var payload = RowJson.Payload(batch, batch[0]);

            Assert.Equal("""{"id":1,"owner":"alice","meta":"{\u0022a\u0022: \u0022x\\u0000y\u0022}","$synchro":{"as_text":["meta"]}}""", payload);
            using var document = JsonDocument.Parse(payload);
            Assert.Equal("""{"a": "x\u0000y"}""", document.RootElement.GetProperty("meta").GetString());
        }
        finally
        {
            batch.Release();
        }
    }

    [Fact]
    public void A_row_over_64_KiB_keeps_the_values_that_fit_in_column_order_and_counts_the_others()
    {
        var big = new string('b', 40_000);
        var batch = Batch(["7", big, """{"k": 1}""", big, "tail"], names: ["id", "owner", "meta", "note", "extra"], types: [Int4, Text, Json, Text, Text]);
        try
        {
            var payload = RowJson.Payload(batch, batch[0]);

            Assert.True(Encoding.UTF8.GetByteCount(payload) <= RowJson.MaxPayloadBytes);
            using var document = JsonDocument.Parse(payload);
            var root = document.RootElement;
            Assert.Equal(7, root.GetProperty("id").GetInt32());
            Assert.Equal(40_000, root.GetProperty("owner").GetString()!.Length);
            Assert.Equal(1, root.GetProperty("meta").GetProperty("k").GetInt32());
            Assert.Equal("tail", root.GetProperty("extra").GetString());
            Assert.False(root.TryGetProperty("note", out _));
            var marker = root.GetProperty(RowJson.MarkerKey);
            Assert.Equal(["note"], marker.GetProperty("omitted").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(1, marker.GetProperty("omitted_count").GetInt32());
            Assert.True(marker.GetProperty("bytes").GetInt32() > 80_000);
        }
        finally
        {
            batch.Release();
        }
    }

    [Fact]
    public void A_row_with_more_omitted_columns_than_listed_counts_them_all_and_stays_bounded()
    {
        string[] names = ["id", "owner", .. Enumerable.Range(2, 58).Select(i => "column_" + i)];
        var values = names.Select(_ => new string('v', 5_000)).ToArray();
        values[0] = "1";
        var batch = Batch(values, names, [Int4, .. names.Skip(1).Select(_ => Text)]);
        try
        {
            var payload = RowJson.Payload(batch, batch[0]);

            Assert.True(Encoding.UTF8.GetByteCount(payload) <= RowJson.MaxPayloadBytes);
            var marker = JsonDocument.Parse(payload).RootElement.GetProperty(RowJson.MarkerKey);
            Assert.Equal(RowJson.MaxListedColumns, marker.GetProperty("omitted").GetArrayLength());
            Assert.True(marker.GetProperty("omitted_count").GetInt32() > RowJson.MaxListedColumns);
        }
        finally
        {
            batch.Release();
        }
    }

    /// <summary>One insert of a whole-row table whose columns are <paramref name="names"/> (default id, owner, meta).</summary>
    private ChangeBatch Batch(string[] values, string[]? names = null, uint[]? types = null)
    {
        names ??= ["id", "owner", "meta"];
        types ??= [Int4, Text, Json];
        var layout = new RowLayout(s_table, names, types, [Array.IndexOf(names, "id"), Array.IndexOf(names, "owner")], fullRow: true);
        var batch = _pool.Rent();
        var first = batch.ValueMark.Values;
        batch.AddText(Encoding.UTF8.GetBytes(values[0]));
        batch.AddText(Encoding.UTF8.GetBytes(values[1]));
        foreach (var value in values)
            batch.AddText(Encoding.UTF8.GetBytes(value));
        batch.Add(new DecodedChange(s_table, ChangeOperation.Insert, first, layout));
        return batch;
    }
}
