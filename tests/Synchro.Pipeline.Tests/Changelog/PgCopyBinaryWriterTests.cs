using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>Our binary COPY encoder: exact bytes, and what a real server stores from them through a raw binary COPY.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PgCopyBinaryWriterTests(PostgresServerFixture postgres)
{
    private const string Orders = "orders";

    [Fact]
    public void Encodes_the_header_rows_and_trailer_byte_for_byte()
    {
        using var writer = new PgCopyBinaryWriter();
        writer.WriteHeader();
        writer.StartRow(4);
        writer.WriteText("é");
        writer.WriteNull();
        writer.WriteInt16(-2);
        writer.WriteInt64(0x0102030405060708);
        writer.WriteTrailer();

        byte[] expected =
        [
            .. "PGCOPY\n"u8, 0xFF, (byte)'\r', (byte)'\n', 0, // signature
            0, 0, 0, 0, 0, 0, 0, 0, // flags, header extension length
            0, 4, // fields
            0, 0, 0, 2, 0xC3, 0xA9, // text "é"
            0xFF, 0xFF, 0xFF, 0xFF, // NULL
            0, 0, 0, 2, 0xFF, 0xFE, // int16 -2
            0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, // int64
            0xFF, 0xFF, // trailer
        ];
        Assert.Equal(expected, writer.Written.ToArray());
    }

    [Fact]
    public async Task A_server_stores_exactly_the_encoded_rows()
    {
        await using var connection = await SidecarDatabase.OpenAsync(await SidecarDatabase.CreateAsync(postgres, "copy_encoder"));
        await SidecarDatabase.ExecuteAsync(connection, "CREATE TABLE copied (n int, t text, s smallint, b bigint, e text)");
        string?[] texts = ["", "user:Zoë", "東京 🚀", "a'b\"c,d\\e{f}\t\n", null, new string('x', 70_000)];
        short[] shorts = [short.MinValue, -1, 0, 1, short.MaxValue];
        long[] longs = [long.MinValue, -1, 0, 1, long.MaxValue, 1L << 40];
        // Enough rows to cross the flush threshold several times, and one value larger than it.
        var rows = Enumerable.Range(0, 5_000)
            .Select(i => (N: i, Text: texts[i % texts.Length], Short: shorts[i % shorts.Length], Long: longs[i % longs.Length], Empty: i % 2 == 0 ? null : "e"))
            .ToList();

        using var writer = new PgCopyBinaryWriter();
        await using (var stream = await connection.BeginRawBinaryCopyAsync("COPY copied (n, t, s, b, e) FROM STDIN (FORMAT BINARY)"))
        {
            writer.WriteHeader();
            foreach (var row in rows)
            {
                writer.StartRow(5);
                writer.WriteInt32(row.N);
                if (row.Text is null)
                    writer.WriteNull();
                else
                    writer.WriteText(row.Text);
                writer.WriteInt16(row.Short);
                writer.WriteInt64(row.Long);
                if (row.Empty is null)
                    writer.WriteNull();
                else
                    writer.WriteText(row.Empty);
                if (writer.Length >= PgCopyBinaryWriter.FlushBytes)
                {
                    await stream.WriteAsync(writer.Written);
                    writer.Clear();
                }
            }
            writer.WriteTrailer();
            await stream.WriteAsync(writer.Written);
        }

        var stored = new List<(int, string?, short, long, string?)>();
        await using (var read = new NpgsqlCommand("SELECT n, t, s, b, e FROM copied ORDER BY n", connection))
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
                stored.Add((reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt16(2), reader.GetInt64(3), reader.IsDBNull(4) ? null : reader.GetString(4)));
        }
        Assert.Equal(rows.Select(r => (r.N, r.Text, r.Short, r.Long, r.Empty)), stored);
    }

    [Fact]
    public async Task Changelog_copy_stores_every_row_in_order_across_flushes()
    {
        await using var connection = await SidecarDatabase.OpenAsync(await SidecarDatabase.CreateAsync(postgres, "copy_changelog"));
        var operations = new[] { ChangeOperation.Insert, ChangeOperation.Update, ChangeOperation.Delete };
        var rows = Enumerable.Range(0, 3_000)
            .Select(i => new ChangelogRow(i % 5 == 0 ? "global" : $"user:Zoë{i % 37}", i % 2 == 0 ? Orders : "sales.items", ((i * 389) % 1000).ToString("D", null), operations[i % 3]))
            .ToList();

        // About 170 KiB of COPY data: several 64 KiB flushes, rows split across none of them.
        await ChangelogStore.WriteChangelogAsync(connection, rows, default);
        await ChangelogStore.WriteChangelogAsync(connection, rows.Take(7).ToList(), default);

        var stored = await SidecarDatabase.RowsAsync(connection, "SELECT bucket_id, table_name, record_id, operation FROM sync_changelog ORDER BY seq");
        var expected = rows.Select(r => $"{r.BucketId}|{r.TableName}|{r.RecordId}|{(short)r.Operation}").ToList();
        Assert.Equal([.. expected, .. expected.Take(7)], stored);
    }
}
