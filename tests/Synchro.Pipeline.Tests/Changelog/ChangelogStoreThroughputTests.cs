using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>
/// Times the store's bulk paths on the test server and prints rows/s (run with
/// <c>--logger "console;verbosity=detailed"</c> to see them). A measurement, not a check: only the row
/// counts are asserted.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", "Measurement")]
public sealed class ChangelogStoreThroughputTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const int Rows = 100_000;
    private const int WarmUpRows = 1_000;

    // Bucket fan-in of a typical per-user layout: many records per owner.
    private const int Owners = 1_000;

    [Fact]
    public async Task Copy_of_100_000_changelog_rows_and_edge_additions_is_timed()
    {
        await using var connection = await SidecarDatabase.OpenAsync(await SidecarDatabase.CreateAsync(postgres, "throughput"));
        var records = Enumerable.Range(0, Rows).Select(_ => new RecordKey("public.orders", Guid.NewGuid().ToString())).ToList();
        var edges = records.Select((r, i) => (Record: r, BucketId: Bucket(i))).ToList();
        var changelog = edges.Select(e => new ChangelogRow(e.BucketId, e.Record.TableName, e.Record.RecordId, ChangeOperation.Insert)).ToList();

        // JIT, type loading and the first plans stay out of the timings.
        await ChangelogStore.WriteChangelogAsync(connection, changelog[..WarmUpRows], default);
        await ChangelogStore.ApplyEdgesAsync(connection, [.. edges[..WarmUpRows].Select(e => (new RecordKey(e.Record.TableName, "warm-up-" + e.Record.RecordId), e.BucketId))], [], default);
        await ChangelogStore.LoadEdgesAsync(connection, records[..WarmUpRows], default);

        await TimeAsync("changelog binary COPY", connection, () => ChangelogStore.WriteChangelogAsync(connection, changelog, default));
        await TimeAsync("edge additions (new)", connection, () => ChangelogStore.ApplyEdgesAsync(connection, edges, [], default));
        Dictionary<RecordKey, List<string>>? loaded = null;
        await TimeAsync("edge load", connection, async () => loaded = await ChangelogStore.LoadEdgesAsync(connection, records, default));

        Assert.Equal(Rows + WarmUpRows, await SidecarDatabase.CountAsync(connection, "sync_changelog"));
        Assert.Equal(Rows + WarmUpRows, await SidecarDatabase.CountAsync(connection, "sync_bucket_edges"));
        Assert.Equal(Rows, loaded!.Count);
    }

    private static string Bucket(int i) => "user:" + (i % Owners).ToString("D4", CultureInfo.InvariantCulture);

    // One transaction per run, commit included, as the writer stage does per batch.
    private async Task TimeAsync(string what, NpgsqlConnection connection, Func<Task> run)
    {
        var stopwatch = Stopwatch.StartNew();
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await run();
            await transaction.CommitAsync();
        }
        stopwatch.Stop();
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{what}: {Rows:N0} rows in {stopwatch.Elapsed.TotalMilliseconds:F0} ms = {Rows / stopwatch.Elapsed.TotalSeconds:N0} rows/s"));
    }
}
