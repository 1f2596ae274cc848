using Npgsql;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Reading;

/// <summary>The reader's role needs only the grants docs/changelog.md lists, and a missing one is named.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class ReaderPrivilegeTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_role_with_the_documented_grants_reads_changes_and_snapshots_and_one_without_is_told_what_to_grant()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "reader_privileges");
        var role = "sync_reader_" + Guid.NewGuid().ToString("N")[..8];
        await db.ExecuteAsync($"""
            CREATE SCHEMA synchro;
            CREATE ROLE {role} LOGIN PASSWORD '{PipelineRoles.Password}';
            """);
        var owner = new NpgsqlConnectionStringBuilder(db.ConnectionString) { SearchPath = "synchro" }.ConnectionString;
        await using (var connection = new NpgsqlConnection(owner))
        {
            await connection.OpenAsync();
            await Synchro.Pipeline.Changelog.ChangelogSchema.EnsureAsync(connection);
        }
        await Sql.ExecuteAsync(owner, """
            INSERT INTO synchro.sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b1', 't', n::text, 1 FROM generate_series(1, 5) AS n;
            INSERT INTO synchro.sync_bucket_edges (table_name, record_id, bucket_id) SELECT 't', n::text, 'b1' FROM generate_series(1, 5) AS n;
            """);
        // Exactly the grants docs/changelog.md gives.
        await Sql.ExecuteAsync(owner, $"""
            GRANT USAGE ON SCHEMA synchro TO {role};
            GRANT SELECT ON synchro.sync_changelog, synchro.sync_bucket_edges, synchro.sync_bucket_horizons TO {role};
            GRANT SELECT ON SEQUENCE synchro.sync_changelog_seq_seq TO {role};
            """);
        await using var dataSource = NpgsqlDataSource.Create(PipelineRoles.As(db.ConnectionString, role, searchPath: "synchro"));
        var reader = new ChangelogReader(dataSource);

        var snapshot = await reader.ReadSnapshotAsync(["b1"], null, 10);
        using (var page = await reader.ReadAsync(["b1"], ChangelogCursor.FromPosition(2), 10))
        {
            Assert.Equal(5, snapshot.Members.Count);
            Assert.Equal(5, snapshot.Cursor!.Position);
            Assert.Equal(3, page.Count);
        }

        await Sql.ExecuteAsync(owner, $"REVOKE SELECT ON SEQUENCE synchro.sync_changelog_seq_seq FROM {role}");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => reader.ReadAsync(["b1"], ChangelogCursor.Start, 10));
        Assert.Contains("grant it SELECT on \"synchro\".sync_changelog", error.Message, StringComparison.Ordinal);
        Assert.Contains("the sequence \"synchro\".sync_changelog_seq_seq", error.Message, StringComparison.Ordinal);
    }
}
