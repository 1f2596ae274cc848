using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// <c>synchro-pipeline run</c>'s exports, as a systemd unit or a Kubernetes pod sets them up: the Prometheus scrape
/// endpoint of <c>--metrics-url</c>, scraped as Prometheus does; OTLP/HTTP to the endpoint of the standard
/// <c>OTEL_*</c> variables, received in the test; and the clear refusal of a port already taken.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class RunTelemetryTests(PostgresServerFixture postgres)
{
    private const int Rows = 50;

    [Fact]
    public async Task Metrics_url_serves_the_pipeline_series_labelled_with_the_slot_for_prometheus()
    {
        const string slot = "slot_cli_metrics";
        var database = await CreateDatabaseAsync("cli_metrics");
        var port = LoopbackPort.Free();
        using var directory = new WorkingDirectory();
        // The wildcard host, as in the systemd unit and the Kubernetes manifest; scraped on the loopback address.
        using var run = CliProcess.Start(directory.Path, Environment(), [.. RunArguments(database, slot), "--metrics-url", $"http://+:{port}/metrics"]);
        await CliDatabase.WaitForStreamingAsync(database, slot, run);
        await Sql.ExecuteAsync(database, $"INSERT INTO items SELECT g, 'u' || g % 3 FROM generate_series(1, {Rows}) g");

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var scrape = new Uri($"http://127.0.0.1:{port}/metrics");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string text;
        long committed;
        do
        {
            text = await http.GetStringAsync(scrape);
            committed = Counter(text, "synchro_pipeline_changes_committed_total", slot);
            if (committed < Rows)
                await Task.Delay(200);
        }
        while (committed < Rows && DateTime.UtcNow < deadline && !run.HasExited);

        Assert.True(committed == Rows, $"synchro_pipeline_changes_committed_total for {slot}: {committed}, not {Rows}{System.Environment.NewLine}{text}{System.Environment.NewLine}{run.Error}");
        Assert.True(Counter(text, "synchro_pipeline_batches_total", slot) > 0, text);
        Assert.Matches($"synchro_pipeline_batch_duration_seconds_bucket\\{{[^}}]*synchro_slot=\"{slot}\"", text);
        Assert.Matches($"synchro_pipeline_replication_lag_bytes\\{{[^}}]*synchro_slot=\"{slot}\"", text);
        Assert.Contains("service_name=\"synchro-pipeline\"", text, StringComparison.Ordinal);

        var result = await run.TerminateAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Otlp_environment_variables_send_the_spans_metrics_and_logs_of_run_to_the_endpoint()
    {
        const string slot = "slot_cli_otlp";
        var database = await CreateDatabaseAsync("cli_otlp");
        await using var receiver = await OtlpReceiver.StartAsync();
        var environment = Environment();
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint.ToString();
        environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        environment["OTEL_SERVICE_NAME"] = "synchro-cli-otlp-test";
        environment["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=cli-otlp-test";
        // Short intervals for the test.
        environment["OTEL_BSP_SCHEDULE_DELAY"] = "100";
        environment["OTEL_BLRP_SCHEDULE_DELAY"] = "100";
        environment["OTEL_METRIC_EXPORT_INTERVAL"] = "200";
        using var directory = new WorkingDirectory();
        using var run = CliProcess.Start(directory.Path, environment, RunArguments(database, slot));
        await CliDatabase.WaitForStreamingAsync(database, slot, run);
        await Sql.ExecuteAsync(database, $"INSERT INTO items SELECT g, 'u' || g % 3 FROM generate_series(1, {Rows}) g");

        string[] expected =
        [
            "traces synchro.pipeline.decode", "traces synchro.pipeline.write", "traces synchro.pipeline.commit", $"traces {slot}",
            "traces synchro-cli-otlp-test",
            "metrics synchro.pipeline.changes.committed", "metrics synchro.pipeline.batch.duration", $"metrics {slot}",
            "metrics synchro-cli-otlp-test", "metrics cli-otlp-test",
            "logs Synchro.Pipeline.Cli", $"logs Starting: slot {slot}", "logs synchro-cli-otlp-test",
        ];
        var deadline = DateTime.UtcNow.AddSeconds(60);
        List<string> missing;
        while ((missing = [.. expected.Where(e => !receiver.Received(e[..e.IndexOf(' ', StringComparison.Ordinal)], e[(e.IndexOf(' ', StringComparison.Ordinal) + 1)..]))]).Count > 0
            && DateTime.UtcNow < deadline && !run.HasExited)
            await Task.Delay(100);
        Assert.True(missing.Count == 0, $"not received: {string.Join(", ", missing)}{System.Environment.NewLine}{run.Error}");

        var result = await run.TerminateAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"{Rows} changes committed", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_metrics_url_whose_port_is_taken_or_that_is_no_http_url_stops_run_with_exit_code_3()
    {
        using var taken = new TcpListener(IPAddress.Any, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        // Checked before the database is reached: none answers here, and the run would wait for it.
        var arguments = RunArguments("Host=127.0.0.1;Port=1;Username=nobody", "slot_cli_metrics_taken");

        var result = await CliProcess.RunAsync(TimeSpan.FromSeconds(60), Environment(), [.. arguments, "--metrics-url", $"http://+:{port}/metrics"]);
        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Contains($"--metrics-url http://+:{port}/metrics: cannot listen there", result.Error, StringComparison.Ordinal);
        Assert.Contains("Choose a free port", result.Error, StringComparison.Ordinal);

        result = await CliProcess.RunAsync(TimeSpan.FromSeconds(60), Environment(), [.. arguments, "--metrics-url", "https://example.com:9464/metrics"]);
        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Contains("--metrics-url https://example.com:9464/metrics is not a URL to listen on: the scrape endpoint serves http only", result.Error, StringComparison.Ordinal);

        result = await CliProcess.RunAsync(TimeSpan.FromSeconds(60), Environment(), [.. arguments, "--metrics-url", "localhost:9464"]);
        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Contains("it must look like http://+:9464/metrics", result.Error, StringComparison.Ordinal);
    }

    private async Task<string> CreateDatabaseAsync(string name)
    {
        var database = await postgres.CreateDatabaseAsync(name);
        await Sql.ExecuteAsync(database, """
            CREATE TABLE items (id int PRIMARY KEY, owner text, deleted_at timestamptz);
            CREATE PUBLICATION items_pub FOR TABLE items;
            """);
        return database;
    }

    private static string[] RunArguments(string database, string slot) =>
        ["run", "--connection", database, "--slot", slot, "--publication", "items_pub", "--log-level", "Information"];

    private static Dictionary<string, string> Environment() => new()
    {
        ["Synchro__Tables__items__OwnerColumn"] = "owner",
        ["Synchro__BatchLinger"] = "5ms",
    };

    /// <summary>The value of a counter's series for <paramref name="slot"/> in a scrape, or -1 without one.</summary>
    private static long Counter(string scrape, string name, string slot)
    {
        foreach (Match match in SeriesPattern().Matches(scrape))
        {
            if (match.Groups["name"].Value == name && match.Groups["labels"].Value.Contains($"synchro_slot=\"{slot}\"", StringComparison.Ordinal))
                return (long)double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
        }
        return -1;
    }

    [GeneratedRegex(@"^(?<name>[a-z_]+)\{(?<labels>[^}]*)\} (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex SeriesPattern();
}
