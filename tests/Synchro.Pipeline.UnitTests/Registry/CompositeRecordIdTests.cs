using System.Text;
using System.Text.Json;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Registry;

/// <summary>
/// The record id of a table with several id columns: a JSON array of their text forms (NULL as <c>null</c>) in one canonical
/// form — JavaScript's <c>JSON.stringify</c> — that any JSON parser splits back; one-column ids stay the column's text.
/// </summary>
public sealed class CompositeRecordIdTests
{
    private static readonly TableRegistration s_docs = new("docs") { IdColumns = ["tenant_id", "id"], SoftDeleteColumn = null };
    private static readonly TableRegistration s_single = new("notes") { SoftDeleteColumn = null };

    public static TheoryData<string?[], string> Examples => new()
    {
        { ["1", "7"], """["1","7"]""" },
        { ["", "x"], """["","x"]""" },
        { [null, "x"], """[null,"x"]""" },
        { ["null", "x"], """["null","x"]""" },
        { ["a,b", "c"], """["a,b","c"]""" },
        { ["a\",\"b", "c"], """["a\",\"b","c"]""" },
        { ["back\\slash", "'single'"], """["back\\slash","'single'"]""" },
        { ["tab\there", "line\nfeed\r"], """["tab\there","line\nfeed\r"]""" },
        { ["\b\f\u0001\u001f\u007f", "/"], "[\"\\b\\f\\u0001\\u001f\u007f\",\"/\"]" },
        { ["東京", "🚀 é ü"], """["東京","🚀 é ü"]""" },
        { ["<&>", "\u2028"], "[\"<&>\",\"\u2028\"]" },
        { ["[\"1\",\"7\"]", "]"], """["[\"1\",\"7\"]","]"]""" },
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public void A_composite_id_is_the_canonical_json_array_of_its_values(string?[] values, string expected)
    {
        Assert.Equal(expected, s_docs.FormatRecordId(values));
        // The decoder's path: the same bytes from the values' UTF-8, as the writer makes ids.
        Assert.Equal(expected, FromBatch(s_docs, values));
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Any_json_parser_splits_a_composite_id_back_into_its_values(string?[] values, string recordId)
    {
        Assert.Equal(values, s_docs.ParseRecordId(recordId));
        Assert.Equal(values, JsonSerializer.Deserialize<string?[]>(recordId));
    }

    [Fact]
    public void The_form_is_what_json_stringify_writes_and_what_the_writer_makes()
    {
        var random = new Random(22);
        for (var n = 0; n < 2_000; n++)
        {
            var values = new string?[random.Next(2, 5)];
            for (var i = 0; i < values.Length; i++)
                values[i] = random.Next(8) == 0 ? null : RandomText(random);
            var table = new TableRegistration("t") { IdColumns = [.. Enumerable.Range(0, values.Length).Select(i => "c" + i)], SoftDeleteColumn = null };

            var id = table.FormatRecordId(values);

            Assert.Equal(Stringify(values), id);
            Assert.Equal(id, FromBatch(table, values));
            Assert.Equal(values, table.ParseRecordId(id));
        }
    }

    [Fact]
    public void Different_values_never_give_the_same_id()
    {
        string?[][] lists =
        [
            ["a,b", "c"], ["a", "b,c"], ["a", "b"], ["", "b"], [null, "b"], ["null", "b"], ["\"a\"", "b"], ["a\\", "b"], ["a\\\"", "b"],
            ["a", ""], ["a", null], [null, null], ["", ""], ["\"\"", ""], ["[]", ""],
        ];
        var ids = lists.Select(s_docs.FormatRecordId).ToList();
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void A_one_column_id_stays_the_columns_text()
    {
        Assert.Equal("7", s_single.FormatRecordId(["7"]));
        Assert.Equal("""["1","7"]""", s_single.FormatRecordId(["""["1","7"]"""]));
        Assert.Equal(["""["1","7"]"""], s_single.ParseRecordId("""["1","7"]"""));
        Assert.Equal("a,b \"c\"", FromBatch(s_single, ["a,b \"c\""]));
        Assert.Throws<ArgumentException>(() => s_single.FormatRecordId([null]));
    }

    [Theory]
    [InlineData("7")]
    [InlineData("""["1"]""")]
    [InlineData("""["1","7","9"]""")]
    [InlineData("""["1",7]""")]
    [InlineData("""["1",["7"]]""")]
    [InlineData("""["1","7"]x""")]
    [InlineData("""["1","7"] ["2","8"]""")]
    [InlineData("""{"tenant_id":"1","id":"7"}""")]
    [InlineData("""["1","7\ud800"]""")]
    [InlineData("""["1","7""")]
    [InlineData("")]
    public void Parsing_refuses_what_is_not_one_value_per_id_column(string recordId)
        => Assert.Throws<FormatException>(() => s_docs.ParseRecordId(recordId));

    [Fact]
    public void Values_must_be_one_per_id_column()
    {
        Assert.Throws<ArgumentException>(() => s_docs.FormatRecordId(["1"]));
        Assert.Throws<ArgumentException>(() => s_docs.FormatRecordId(["1", "2", "3"]));
        Assert.Throws<ArgumentException>(() => s_single.FormatRecordId(["1", "2"]));
    }

    [Fact]
    public void A_long_id_built_by_the_writer_matches_the_string_form()
    {
        // Past the writer's stack buffer: the rented one gives the same bytes.
        string?[] values = [new string('x', 300) + "\"\n", string.Concat(Enumerable.Repeat("東京\u0001", 200))];

        Assert.Equal(s_docs.FormatRecordId(values), FromBatch(s_docs, values));
    }

    /// <summary>The id the writer makes of a decoded change whose id columns hold <paramref name="values"/>.</summary>
    private static string FromBatch(TableRegistration table, string?[] values)
    {
        using var batch = new ChangeBatch();
        foreach (var value in values)
        {
            if (value is null)
                batch.AddEmpty(TupleValueKind.Null);
            else
                batch.AddText(Encoding.UTF8.GetBytes(value));
        }
        batch.Add(new DecodedChange(table, ChangeOperation.Insert, 0));
        return batch.RecordId(0);
    }

    /// <summary>JSON.stringify of an array of strings and nulls, written out from its specification (ECMA-262 QuoteJSONString).</summary>
    private static string Stringify(string?[] values)
    {
        var text = new StringBuilder("[");
        for (var i = 0; i < values.Length; i++)
        {
            if (i > 0)
                text.Append(',');
            if (values[i] is not { } value)
            {
                text.Append("null");
                continue;
            }
            text.Append('"');
            foreach (var c in value)
            {
                text.Append(c switch
                {
                    '\b' => "\\b",
                    '\t' => "\\t",
                    '\n' => "\\n",
                    '\f' => "\\f",
                    '\r' => "\\r",
                    '"' => "\\\"",
                    '\\' => "\\\\",
                    < ' ' => $"\\u{(int)c:x4}",
                    _ => c.ToString(),
                });
            }
            text.Append('"');
        }
        return text.Append(']').ToString();
    }

    private static string RandomText(Random random)
    {
        const string Alphabet = "ab,\"\\[]{}: \t\n\r\b\f\u0000\u0001\u001f\u007f/'é東🚀";
        var length = random.Next(0, 8);
        var text = new StringBuilder();
        for (var i = 0; i < length; i++)
        {
            var at = random.Next(Alphabet.Length);
            // Keep surrogate pairs whole: values from the database are valid UTF-16.
            if (char.IsSurrogate(Alphabet[at]))
                text.Append("🚀");
            else
                text.Append(Alphabet[at]);
        }
        return text.ToString();
    }
}
