using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Columns stored out of line (TOAST) that an UPDATE leaves alone arrive as "unchanged" ('u') without their value:
/// never a wrong bucket, never a flipped deleted state because of it.
/// </summary>
/// <remarks>
/// The values are random (incompressible) and the columns <c>STORAGE EXTERNAL</c>, so a row over the 2 kB TOAST
/// threshold stores them out of line; each test checks the TOAST table holds them. They stay under the 2.7 kB a
/// btree entry of the sidecar indexes (bucket ids, record ids) can take, above the default id limits, which the tests
/// raise (<see cref="WalPipelineOptions.MaxBucketIdBytes"/>, <see cref="WalPipelineOptions.MaxRecordIdBytes"/>).
/// </remarks>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class UnchangedToastTests(PostgresServerFixture postgres)
{
    private const int ToastedLength = 2200;

    [Fact]
    public async Task An_owner_column_that_arrives_unchanged_keeps_the_records_bucket()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "toast_owner");
        await harness.ExecuteAsync("""
            CREATE TABLE docs (id int PRIMARY KEY, owner text, title text, deleted_note text);
            ALTER TABLE docs ALTER COLUMN owner SET STORAGE EXTERNAL;
            ALTER PUBLICATION synchro_pub ADD TABLE docs;
            """);
        var owner = RandomText(1);
        var options = harness.Options();
        options.Tables = Registry();
        // An owner long enough to be stored out of line is longer than the default bucket id limit: raised for it.
        (options.MaxRecordIdBytes, options.MaxBucketIdBytes) = (256, 2_300);
        await harness.StartAsync(options);

        await harness.ExecuteAsync($"INSERT INTO docs VALUES (1, '{owner}', 'draft', NULL)");
        Assert.True(await ToastChunksAsync(harness, "docs") >= 2, "the owner is stored out of line");
        await harness.ExecuteAsync("UPDATE docs SET title = 'final' WHERE id = 1");
        // In one batch with a change before it: the kept buckets are the overlay's, not only the loaded edges.
        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO docs VALUES (2, 'bob', 'x', NULL);
            UPDATE docs SET owner = '{owner}' WHERE id = 2;
            UPDATE docs SET title = 'y' WHERE id = 2;
            COMMIT;
            """);

        var rows = await harness.WaitForChangelogAsync(6);
        Assert.Equal(
        [
            "user:OWNER docs 1 1",
            "user:OWNER docs 1 2",
            "user:bob docs 2 1",
            "user:OWNER docs 2 1",
            "user:bob docs 2 3",
            "user:OWNER docs 2 2",
        ], rows.Select(r => r.Replace(owner, "OWNER", StringComparison.Ordinal)));
        Assert.Equal(2L, await harness.ScalarAsync<long>($"SELECT count(*) FROM sync_bucket_edges WHERE bucket_id = 'user:{owner}'"));
    }

    [Fact]
    public async Task A_parent_key_that_arrives_unchanged_keeps_the_childs_buckets()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "toast_parent");
        await harness.ExecuteAsync("""
            CREATE TABLE folders (id text PRIMARY KEY, user_id text);
            CREATE TABLE files (id int PRIMARY KEY, folder_id text NOT NULL REFERENCES folders (id), name text);
            ALTER TABLE files ALTER COLUMN folder_id SET STORAGE EXTERNAL;
            ALTER PUBLICATION synchro_pub ADD TABLE folders, files;
            """);
        var folder = RandomText(2);
        var options = harness.Options();
        options.Tables = new TableRegistry()
            .Add(new TableRegistration("folders") { OwnerColumn = "user_id", SoftDeleteColumn = null })
            .Add(new TableRegistration("files") { ParentTable = "folders", ParentForeignKeyColumn = "folder_id", SoftDeleteColumn = null });
        // A folder id long enough to be stored out of line is longer than the default record id limit: raised for it.
        (options.MaxRecordIdBytes, options.MaxBucketIdBytes) = (2_300, 256);
        await harness.StartAsync(options);

        await harness.ExecuteAsync($"INSERT INTO folders VALUES ('{folder}', 'alice'); INSERT INTO files VALUES (1, '{folder}', 'a.txt')");
        Assert.True(await ToastChunksAsync(harness, "files") >= 2, "the parent key is stored out of line");
        await harness.WaitForChangelogAsync(2);
        // The folder moves to bob: its own id is stored out of line too and arrives unchanged ('u'), with the old key
        // (which the server sends because the key is external). Then the file changes without its key: it keeps
        // the buckets it is in rather than looking the parent up, and then moves with its folder (CascadeParentMoves).
        // One transaction, so one batch: the cascade's rows come after both changes'.
        await harness.ExecuteAsync($"UPDATE folders SET user_id = 'bob' WHERE id = '{folder}'; UPDATE files SET name = 'b.txt' WHERE id = 1;");

        var rows = await harness.WaitForChangelogAsync(7);
        Assert.Equal(
        [
            "user:alice folders FOLDER 1",
            "user:alice files 1 1",
            "user:bob folders FOLDER 1",
            "user:alice folders FOLDER 3",
            "user:alice files 1 2",
            "user:bob files 1 1",
            "user:alice files 1 3",
        ], rows.Select(r => r.Replace(folder, "FOLDER", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_soft_delete_column_that_arrives_unchanged_keeps_the_record_deleted()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "toast_soft_delete");
        await harness.ExecuteAsync("""
            CREATE TABLE docs (id int PRIMARY KEY, owner text, title text, deleted_note text);
            ALTER TABLE docs ALTER COLUMN deleted_note SET STORAGE EXTERNAL;
            ALTER PUBLICATION synchro_pub ADD TABLE docs;
            """);
        var note = RandomText(3);
        var options = harness.Options();
        options.Tables = Registry();
        await harness.StartAsync(options);

        await harness.ExecuteAsync("INSERT INTO docs VALUES (1, 'alice', 'draft', NULL)");
        await harness.ExecuteAsync($"UPDATE docs SET deleted_note = '{note}' WHERE id = 1");
        Assert.True(await ToastChunksAsync(harness, "docs") >= 2, "the soft-delete value is stored out of line");
        await harness.ExecuteAsync("UPDATE docs SET title = 'edited while deleted' WHERE id = 1");
        await harness.WaitForChangelogAsync(3);
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        await harness.ExecuteAsync("UPDATE docs SET deleted_note = NULL WHERE id = 1");

        var rows = await harness.WaitForChangelogAsync(4);
        Assert.Equal(
        [
            "user:alice docs 1 1",
            "user:alice docs 1 3",
            // Unchanged means still non-null, so still deleted: a delete again, as for a soft-delete column sent in full.
            "user:alice docs 1 3",
            "user:alice docs 1 1",
        ], rows);
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
    }

    private static TableRegistry Registry() => new TableRegistry()
        .Add(new TableRegistration("docs") { OwnerColumn = "owner", SoftDeleteColumn = "deleted_note" });

    /// <summary>Random letters and digits: nothing for compression to find.</summary>
    private static string RandomText(int seed)
    {
        const string Alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        var random = new Random(seed);
        return string.Create(ToastedLength, random, (chars, r) =>
        {
            for (var i = 0; i < chars.Length; i++)
                chars[i] = Alphabet[r.Next(Alphabet.Length)];
        });
    }

    private static async Task<long> ToastChunksAsync(PipelineHarness harness, string table)
    {
        var toast = await harness.ScalarAsync<string>($"SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = '{table}'::regclass");
        return await harness.ScalarAsync<long>($"SELECT count(*) FROM {toast}");
    }
}
