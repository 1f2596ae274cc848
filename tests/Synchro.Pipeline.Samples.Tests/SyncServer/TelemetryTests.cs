using Synchro.Pipeline.Samples.SyncServer;
using Synchro.Pipeline.Samples.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Samples.Tests.SyncServer;

/// <summary>The sync server's OpenTelemetry wiring, exporting over OTLP/HTTP to a receiver in the test: the pipeline's spans, its metrics and the logs arrive.</summary>
[Collection(SamplesPostgresCollection.Name)]
public sealed class TelemetryTests(SamplesPostgresFixture postgres, ITestOutputHelper output)
{
    [Fact]
    public async Task Spans_metrics_and_logs_of_the_hosted_pipeline_reach_the_otlp_endpoint()
    {
        var database = await postgres.CreateDatabaseAsync("telemetry");
        await Sql.ExecuteAsync(database, """
            CREATE TABLE items (id int PRIMARY KEY, owner text, deleted_at timestamptz);
            CREATE PUBLICATION telemetry_pub FOR TABLE items;
            """);
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var server = await SyncServerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Synchro:ConnectionString"] = database,
            ["Synchro:SlotName"] = "slot_telemetry",
            ["Synchro:PublicationName"] = "telemetry_pub",
            ["Synchro:BatchLinger"] = "5ms",
            ["Synchro:Tables:items:OwnerColumn"] = "owner",
            // The standard OTEL_* settings, as environment variables would give them; short intervals for the test.
            [SyncServerTelemetry.EndpointKey] = receiver.Endpoint.ToString(),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
            ["OTEL_BLRP_SCHEDULE_DELAY"] = "100",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "200",
        }, output);

        // Streaming first, so the rows come as a batch and not in the initial snapshot.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (server.Pipeline!.GetStatus().State != WalPipelineState.Running && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Equal(WalPipelineState.Running, server.Pipeline.GetStatus().State);
        await Sql.ExecuteAsync(database, "INSERT INTO items SELECT g, 'u' || g % 3 FROM generate_series(1, 50) g");
        string[] expected =
        [
            "traces synchro.pipeline.decode", "traces synchro.pipeline.write", "traces synchro.pipeline.commit", "traces slot_telemetry",
            "metrics synchro.pipeline.batch.duration", "metrics synchro.pipeline.changes.committed", "metrics slot_telemetry",
            "logs Synchro.Pipeline", "logs synchro-sync-server",
        ];
        List<string> missing;
        while ((missing = [.. expected.Where(e => !receiver.Received(e[..e.IndexOf(' ')], e[(e.IndexOf(' ') + 1)..]))]).Count > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Empty(missing);
        Assert.Equal(50, server.Pipeline.GetStatus().ChangesCommitted);
    }
}
