using Microsoft.Extensions.Logging.Abstractions;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>
/// Binary tuple mode in the decoder, on streams captured from a real server: referenced columns' binary values read
/// back as exactly the text text mode delivers, soft-delete columns of any type work by presence, and a referenced
/// column of a type without conversion is an error at its Relation message.
/// </summary>
public sealed class BinaryTupleDecoderTests
{
    private static readonly BatchLimits s_unlimited = new(100_000, 1L << 40);

    public static TheoryData<string> BenchRegistrations => ["owner uuid", "bucket int4, soft-delete timestamptz", "bucket text, parent int4", "id uuid and text"];

    [Theory]
    [MemberData(nameof(BenchRegistrations))]
    public void The_binary_benchmark_stream_decodes_to_the_text_streams_values(string registration)
    {
        var table = registration switch
        {
            "owner uuid" => new TableRegistration("orders") { OwnerColumn = "owner_id" },
            // created_at is never null: every update is a soft delete, decided from a timestamptz in both modes.
            "bucket int4, soft-delete timestamptz" => new TableRegistration("orders") { BucketByColumn = "quantity", SoftDeleteColumn = "created_at" },
            // A composite id: its JSON array is built from the converted values, so it is the same string in both modes.
            "id uuid and text" => new TableRegistration("orders") { IdColumns = ["owner_id", "title"], BucketByColumn = "status" },
            _ => new TableRegistration("orders") { IdColumn = "title", BucketByColumn = "status", ParentTable = "orders", ParentForeignKeyColumn = "quantity" },
        };
        var registry = new TableRegistry().Add(table);

        using var text = Decode(BenchStream.Load(), registry, binary: false);
        using var binary = Decode(BenchStream.LoadBinary(), registry, binary: true);

        Assert.Equal(2000, text.Batch.Count);
        Assert.Equal(text.Batch.Count, binary.Batch.Count);
        var softDelete = table.SoftDeleteColumn is { } column ? table.ReferencedColumnIndex(column) : -1;
        for (var i = 0; i < text.Batch.Count; i++)
        {
            Assert.Equal(text.Batch[i].Operation, binary.Batch[i].Operation);
            Assert.Equal(text.Batch.RecordId(i), binary.Batch.RecordId(i));
            for (var c = 0; c < table.ReferencedColumns.Count; c++)
            {
                var expected = text.Batch.Value(text.Batch[i], c);
                var actual = binary.Batch.Value(binary.Batch[i], c);
                Assert.Equal(expected.Kind, actual.Kind);
                // A timestamptz soft-delete column is read by presence only: its text is not reproduced.
                if (c != softDelete)
                    Assert.Equal(text.Batch.GetString(text.Batch[i], c), binary.Batch.GetString(binary.Batch[i], c));
            }
        }
        Assert.Equal(registration == "bucket int4, soft-delete timestamptz" ? 1000 : 0, Enumerable.Range(0, 2000).Count(i => binary.Batch[i].Operation == ChangeOperation.Delete));
        Assert.Equal(
            table.HasCompositeId ? """["00000000-0000-4000-9000-00000000001e","Order number 1000"]"""
                : table.IdColumn == "id" ? "00000000-0000-4000-8000-0000000003e8" : "Order number 1000",
            binary.Batch.RecordId(1999));
    }

    [Theory]
    [InlineData("id", "9f1c2a4e-8d3b-4c5e-a1f0-123456789abc")]
    [InlineData("n", "42")]
    [InlineData("big", "-7")]
    [InlineData("small", "3")]
    [InlineData("name", "név")]
    [InlineData("label", "lbl")]
    [InlineData("flag", "f")]
    public void Each_supported_type_reads_as_its_text_form(string column, string expected)
    {
        // binary.v1: items (id uuid, n int4, big int8, small int2, name text, label varchar(10), amount numeric,
        // at timestamptz, flag bool, blob bytea); one full row, then one with only its id.
        var registry = new TableRegistry().Add(new TableRegistration("items") { OwnerColumn = column == "id" ? null : column, SoftDeleteColumn = "at" });

        using var decoded = Decode(GoldenFixture.Load("binary.v1").Stream, registry, binary: true);

        var batch = decoded.Batch;
        Assert.Equal(2, batch.Count);
        var index = registry.First().ReferencedColumnIndex(column);
        Assert.Equal(expected, batch.GetString(batch[0], index));
        Assert.Equal("9f1c2a4e-8d3b-4c5e-a1f0-123456789abc", batch.RecordId(0));
        Assert.Equal("00000000-0000-0000-0000-000000000001", batch.RecordId(1));
        Assert.Equal(column == "id" ? "00000000-0000-0000-0000-000000000001" : null, batch.GetString(batch[1], index));
        // The timestamptz soft-delete column: non-null in the first row (kept as empty text), null in the second.
        var at = registry.First().ReferencedColumnIndex("at");
        Assert.Equal(("", (string?)null), (batch.GetString(batch[0], at), batch.GetString(batch[1], at)));
    }

    [Theory]
    [InlineData("amount", "numeric")]
    [InlineData("at", "timestamp with time zone")]
    [InlineData("blob", "bytea")]
    public void A_referenced_column_of_another_type_is_an_error_at_the_Relation_message(string column, string type)
    {
        var registry = new TableRegistry().Add(new TableRegistration("items") { OwnerColumn = column, SoftDeleteColumn = null });

        var error = Assert.Throws<WalPipelineException>(() => Decode(GoldenFixture.Load("binary.v1").Stream, registry, binary: true).Dispose());

        Assert.Contains($"Column '{column}' of table public.items is of type {type}", error.Message, StringComparison.Ordinal);
        Assert.Contains("Turn BinaryTupleMode off, or register a column of a supported type", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_soft_delete_column_of_any_type_is_read_by_presence()
    {
        var registry = new TableRegistry().Add(new TableRegistration("items") { SoftDeleteColumn = "amount" });

        using var decoded = Decode(GoldenFixture.Load("binary.v1").Stream, registry, binary: true);

        var amount = registry.First().ReferencedColumnIndex("amount");
        Assert.Equal(TupleValueKind.Text, decoded.Batch.Value(decoded.Batch[0], amount).Kind);
        Assert.Equal(TupleValueKind.Null, decoded.Batch.Value(decoded.Batch[1], amount).Kind);
    }

    [Fact]
    public void Text_mode_still_refuses_binary_values()
    {
        var registry = new TableRegistry().Add(new TableRegistration("items") { SoftDeleteColumn = null });

        var error = Assert.Throws<WalPipelineException>(() => Decode(GoldenFixture.Load("binary.v1").Stream, registry, binary: false).Dispose());

        Assert.Contains("arrived in binary format, which this pipeline does not request", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2950u, 15, "uuid")]
    [InlineData(23u, 8, "integer")]
    [InlineData(20u, 4, "bigint")]
    [InlineData(16u, 2, "boolean")]
    public void A_binary_value_of_the_wrong_size_is_an_error_naming_the_column(uint typeOid, int length, string type)
    {
        var registry = new TableRegistry().Add(new TableRegistration("t") { SoftDeleteColumn = null });
        var relation = new MessageBuilder('R').Int32(16384).CString("public").CString("t").Char('d').Int16(1)
            .Byte(1).CString("id").Int32((int)typeOid).Int32(-1).Build();
        var insert = new MessageBuilder('I').Int32(16384).Char('N').Int16(1).Char('b').Int32(length).Raw(new byte[length]).Build();

        var error = Assert.Throws<WalPipelineException>(() => Decode(FrameStream.Build([(new Lsn(1), new Lsn(1), relation), (new Lsn(2), new Lsn(2), insert)]), registry, binary: true).Dispose());

        Assert.Contains($"Column 'id' of public.t arrived as a binary value of {length} byte(s), which is not a valid {type}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_UTF8_in_a_binary_text_value_is_an_error()
    {
        var registry = new TableRegistry().Add(new TableRegistration("t") { SoftDeleteColumn = null });
        var relation = new MessageBuilder('R').Int32(16384).CString("public").CString("t").Char('d').Int16(1)
            .Byte(1).CString("id").Int32(25).Int32(-1).Build();
        var insert = new MessageBuilder('I').Int32(16384).Char('N').Int16(1).Char('b').Int32(2).Raw(0xC3, 0x28).Build();

        var error = Assert.Throws<WalPipelineException>(() => Decode(FrameStream.Build([(new Lsn(1), new Lsn(1), relation), (new Lsn(2), new Lsn(2), insert)]), registry, binary: true).Dispose());

        Assert.Contains("not UTF-8", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Decodes a whole stream of committed transactions into one batch.</summary>
    private static Decoded Decode(byte[] stream, TableRegistry registry, bool binary)
    {
        var parser = new PgOutputParser(new PgOutputOptions(1, binary: binary));
        var decoder = new ChangeDecoder(registry, s_unlimited, Lsn.Invalid, NullLogger.Instance) { BinaryTuples = binary };
        foreach (var (start, _, payload) in FrameStream.Split(stream))
        {
            var handler = new DecoderStage.Handler(decoder, payload.Length);
            parser.Parse(payload, start, ref handler);
        }
        return new Decoded(decoder);
    }

    private sealed class Decoded : IDisposable
    {
        public Decoded(ChangeDecoder decoder)
        {
            Batch = DecoderItems.CutIdleBatch(decoder);
        }

        public ChangeBatch Batch { get; }

        public void Dispose() => Batch.Release();
    }
}
