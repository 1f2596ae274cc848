using System.Globalization;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Synchro.Pipeline.Cli;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>
/// The operator's kit in docs/deploy (Grafana dashboard, Prometheus alert rules, systemd unit, Kubernetes manifest) is
/// kept true to the code: the metric names come from the instruments the code creates, the exit codes from
/// <see cref="ExitCodes"/>, the option names from <see cref="WalPipelineOptions"/>, the event ids from the id lists.
/// </summary>
public sealed partial class OperatorKitTests
{
    // Labels Prometheus adds itself: the scrape's target (job, instance) and a histogram bucket's bound (le).
    private static readonly string[] s_scrapeLabels = ["job", "instance", "le"];

    private static readonly Lazy<IReadOnlyList<InstrumentInfo>> s_instruments = new(InstrumentCatalog.Read);

    private static string Deploy(string file) => Path.Combine(EventIdTests.RepositoryRoot(), "docs", "deploy", file);

    [Fact]
    public void The_naming_rule_gives_the_exporters_names()
    {
        // The pipeline's own, one of each shape.
        Assert.Equal("synchro_pipeline_wal_received_bytes_total", PrometheusNames.Of("synchro.pipeline.wal.received", "By", InstrumentKind.Counter));
        Assert.Equal("synchro_pipeline_changes_committed_total", PrometheusNames.Of("synchro.pipeline.changes.committed", "{change}", InstrumentKind.Counter));
        Assert.Equal("synchro_pipeline_replication_lag_time_seconds", PrometheusNames.Of("synchro.pipeline.replication.lag_time", "s", InstrumentKind.Gauge));
        Assert.Equal("synchro_pipeline_slot_safe_wal_size_bytes", PrometheusNames.Of("synchro.pipeline.slot.safe_wal_size", "By", InstrumentKind.Gauge));
        Assert.Equal("synchro_pipeline_batch_duration_seconds", PrometheusNames.Of("synchro.pipeline.batch.duration", "s", InstrumentKind.Histogram));
        Assert.Equal("synchro_pipeline_batch_size", PrometheusNames.Of("synchro.pipeline.batch.size", "{change}", InstrumentKind.Histogram));
        // The rule's other cases: a unit or _total already there, a ratio, a rate, a leading digit, runs of separators.
        Assert.Equal("db_io_bytes_total", PrometheusNames.Of("db.io.bytes", "By", InstrumentKind.Counter));
        Assert.Equal("db_io_bytes_total", PrometheusNames.Of("db.io_bytes_total", "By", InstrumentKind.Counter));
        Assert.Equal("cpu_utilization", PrometheusNames.Of("cpu.utilization", "1", InstrumentKind.Gauge));
        Assert.Equal("net_throughput_bytes_per_second", PrometheusNames.Of("net.throughput", "By/s", InstrumentKind.Gauge));
        // The exporter replaces a leading digit, it does not prefix it.
        Assert.Equal("_xx_responses_total", PrometheusNames.Of("2xx.responses", null, InstrumentKind.Counter));
        Assert.Equal("a_b_c", PrometheusNames.Of("a.-_b..c", "", InstrumentKind.Gauge));
        Assert.Equal("synchro_slot_invalidation_reason", PrometheusNames.Label("synchro.slot.invalidation_reason"));
    }

    [Fact]
    public void The_catalog_holds_every_instrument_of_the_meter_with_its_kind_and_tags()
    {
        var instruments = s_instruments.Value;
        Assert.True(instruments.Count >= 22, $"only {instruments.Count} instruments found: {string.Join(", ", instruments.Select(i => i.Name))}");
        Assert.Equal(InstrumentKind.Counter, Single("synchro.pipeline.reconnects").Kind);
        Assert.Equal(InstrumentKind.Gauge, Single("synchro.pipeline.replication.lag").Kind);
        Assert.Equal(InstrumentKind.Histogram, Single("synchro.pipeline.changelog.latency").Kind);
        Assert.Equal(InstrumentKind.Counter, Single("synchro.pipeline.compaction.runs").Kind);
        Assert.Contains("synchro.queue", Single("synchro.pipeline.queue.depth").TagKeys);
        Assert.Contains("synchro.slot.invalidation_reason", Single("synchro.pipeline.slot.invalidated").TagKeys);
        Assert.Contains("synchro.compaction.outcome", Single("synchro.pipeline.compaction.runs").TagKeys);
    }

    [Fact]
    public void Every_metric_and_label_the_dashboard_and_the_alert_rules_name_exists()
    {
        var problems = new List<string>();
        foreach (var (where, expression) in DashboardExpressions().Concat(AlertExpressions()))
            problems.AddRange(Problems(expression).Select(p => $"{where}: {p} in {expression}"));

        foreach (var rule in AlertRules())
        {
            foreach (var label in TemplateLabels().Matches(string.Join(" ", rule.Annotations.Values)).Select(m => m.Groups["label"].Value))
            {
                if (!KnownLabels().Contains(label))
                    problems.Add($"alert {rule.Alert}: annotation label {label} is not a label of the metrics");
            }
        }

        Assert.True(problems.Count == 0, "The kit names metrics or labels the code does not create:" + Environment.NewLine + string.Join(Environment.NewLine, problems));
        Assert.True(DashboardExpressions().Count() > 20, "the dashboard's queries were not found");
        Assert.True(AlertExpressions().Count() >= 7, "the alert rules' expressions were not found");
    }

    [Fact]
    public void The_expression_scanner_reports_unknown_metrics_series_and_labels()
    {
        Assert.Empty(Problems("sum by (le, synchro_slot) (rate(synchro_pipeline_batch_duration_seconds_bucket{synchro_slot=~\"$synchro_slot\"}[5m]))"));
        Assert.Equal(["unknown metric synchro_pipeline_batch_duration_bucket"], Problems("rate(synchro_pipeline_batch_duration_bucket[5m])"));
        Assert.Equal(["unknown metric synchro_pipeline_reconnects"], Problems("increase(synchro_pipeline_reconnects[5m])"));
        Assert.Equal(["unknown metric synchro_pipeline_replication_lag_bytes_bucket"], Problems("synchro_pipeline_replication_lag_bytes_bucket"));
        Assert.Equal(["unknown label synchro_queues"], Problems("max by (synchro_queues) (synchro_pipeline_queue_depth)"));
        Assert.Equal(["unknown label queue"], Problems("synchro_pipeline_queue_depth{queue=\"batches\"}"));
        Assert.Equal(["unknown label slot"], Problems("label_values(synchro_pipeline_replication_lag_bytes, slot)"));
    }

    [Fact]
    public void Every_instrument_is_on_the_dashboard()
    {
        var referenced = DashboardExpressions().SelectMany(e => MetricNames().Matches(e.Expression).Select(m => m.Value)).ToHashSet(StringComparer.Ordinal);

        var missing = s_instruments.Value
            .Where(i => i.Kind == InstrumentKind.Histogram
                ? !PrometheusNames.HistogramSeries.Any(series => referenced.Contains(i.PrometheusName + series))
                : !referenced.Contains(i.PrometheusName))
            .Select(i => $"{i.Name} ({i.PrometheusName})");

        Assert.True(!missing.Any(), "Instruments no panel of docs/deploy/grafana-dashboard.json shows:" + Environment.NewLine + string.Join(Environment.NewLine, missing));
    }

    [Fact]
    public void The_deployment_doc_names_every_instrument_by_its_Prometheus_name_and_no_other()
    {
        var root = EventIdTests.RepositoryRoot();
        var deployment = File.ReadAllText(Path.Combine(root, "docs", "deployment.md"));
        var kubernetes = File.ReadAllText(Path.Combine(root, "docs", "kubernetes.md"));

        var unknown = Problems(deployment + Environment.NewLine + kubernetes, prose: true);
        var missing = s_instruments.Value.Where(i => !deployment.Contains($"| `{i.Name}` | `{i.PrometheusName}` |", StringComparison.Ordinal))
            .Select(i => $"{i.Name} ({i.PrometheusName})");

        Assert.True(unknown.Count == 0, "docs/deployment.md or docs/kubernetes.md names what the code does not export:" + Environment.NewLine + string.Join(Environment.NewLine, unknown));
        Assert.True(!missing.Any(), "docs/deployment.md#prometheus-names lacks a row for:" + Environment.NewLine + string.Join(Environment.NewLine, missing));
    }

    [Fact]
    public void The_dashboard_is_importable_with_a_Prometheus_data_source_and_a_slot_variable()
    {
        var dashboard = Dashboard();
        var variables = dashboard["templating"]!["list"]!.AsArray();
        var source = Assert.Single(variables, v => (string?)v!["name"] == "DS_PROMETHEUS")!;
        Assert.Equal("datasource", (string?)source["type"]);
        Assert.Equal("prometheus", (string?)source["query"]);
        var slot = Assert.Single(variables, v => (string?)v!["name"] == "synchro_slot")!;
        Assert.Matches(@"^label_values\(synchro_pipeline_\w+, synchro_slot\)$", (string?)slot["definition"]);
        Assert.All(variables.Where(v => (string?)v!["type"] == "query"), v => Assert.Equal("${DS_PROMETHEUS}", (string?)v!["datasource"]!["uid"]));
        Assert.False(string.IsNullOrEmpty((string?)dashboard["uid"]));
        Assert.False(string.IsNullOrEmpty((string?)dashboard["title"]));

        var panels = dashboard["panels"]!.AsArray().Select(p => p!).ToList();
        Assert.Equal(panels.Count, panels.Select(p => (int)p["id"]!).Distinct().Count());
        foreach (var panel in panels.Where(p => (string?)p["type"] != "row"))
        {
            var title = (string?)panel["title"];
            Assert.Equal("${DS_PROMETHEUS}", (string?)panel["datasource"]!["uid"]);
            Assert.False(string.IsNullOrWhiteSpace((string?)panel["description"]), $"panel {title} has no description");
            var targets = panel["targets"]!.AsArray();
            Assert.NotEmpty(targets);
            Assert.All(targets, t => Assert.Equal("${DS_PROMETHEUS}", (string?)t!["datasource"]!["uid"]));
            // Every query is narrowed to the chosen slots and instances.
            Assert.All(targets, t => Assert.Contains("synchro_slot=~\"$synchro_slot\"", (string?)t!["expr"], StringComparison.Ordinal));
        }
    }

    [Fact]
    public void The_alert_rules_parse_and_each_is_explained_in_the_docs()
    {
        var rules = AlertRules();
        var doc = File.ReadAllText(Path.Combine(EventIdTests.RepositoryRoot(), "docs", "deployment.md"));

        Assert.All(rules, rule =>
        {
            Assert.Matches("^SynchroPipeline[A-Z][A-Za-z]+$", rule.Alert);
            Assert.False(string.IsNullOrWhiteSpace(rule.Expr), $"{rule.Alert} has no expr");
            Assert.Contains(rule.Labels.GetValueOrDefault("severity") ?? "", new[] { "warning", "critical" });
            Assert.False(string.IsNullOrWhiteSpace(rule.Annotations.GetValueOrDefault("summary")), $"{rule.Alert} has no summary");
            Assert.False(string.IsNullOrWhiteSpace(rule.Annotations.GetValueOrDefault("description")), $"{rule.Alert} has no description");
            Assert.True(doc.Contains($"`{rule.Alert}`", StringComparison.Ordinal), $"docs/deployment.md does not explain {rule.Alert}");
        });
        Assert.Equal(rules.Count, rules.Select(r => r.Alert).Distinct().Count());

        // What the rules must watch: lag in time and bytes, the slot's margin and its loss, progress, reconnects,
        // rule failures, compaction.
        var watched = AlertExpressions().SelectMany(e => MetricNames().Matches(e.Expression).Select(m => m.Value)).ToHashSet(StringComparer.Ordinal);
        string[] required =
        [
            "synchro.pipeline.replication.lag_time", "synchro.pipeline.replication.lag", "synchro.pipeline.slot.safe_wal_size",
            "synchro.pipeline.slot.invalidated", "synchro.pipeline.batches", "synchro.pipeline.reconnects",
            "synchro.pipeline.rule_failures", "synchro.pipeline.compaction.runs",
        ];
        Assert.All(required, name => Assert.Contains(Single(name).PrometheusName, watched));
    }

    [Fact]
    public void The_event_ids_the_kit_names_exist()
    {
        var texts = new[] { "grafana-dashboard.json", "prometheus-alerts.yaml", "synchro-pipeline.service", "kubernetes.yaml" }
            .Select(file => (File: file, Text: File.ReadAllText(Deploy(file))));

        var named = texts.SelectMany(t => EventIdTests.NamedIds(t.Text).Select(n => (t.File, n.Id, n.Line))).ToList();
        var defined = EventIdConstants();
        var unknown = named.Where(n => !defined.Contains(n.Id)).Select(n => $"docs/deploy/{n.File}:{n.Line}: event {n.Id}");

        Assert.True(!unknown.Any(), "The kit names event ids that neither EventIds nor CliEventIds define:" + Environment.NewLine + string.Join(Environment.NewLine, unknown));
        Assert.True(named.Count >= 10, $"only {named.Count} event ids found in docs/deploy");
    }

    [Fact]
    public void The_systemd_unit_restarts_on_failure_but_never_on_the_exit_codes_that_need_the_operator()
    {
        var unit = UnitSettings(File.ReadAllLines(Deploy("synchro-pipeline.service")));
        var constants = typeof(ExitCodes).GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Where(f => f is { IsLiteral: true } && f.FieldType == typeof(int))
            .ToDictionary(f => (int)f.GetRawConstantValue()!, f => f.Name);

        var prevented = Assert.Single(unit["RestartPreventExitStatus"]).Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(code => int.Parse(code, CultureInfo.InvariantCulture)).Order().ToList();

        Assert.All(ExitCodes.NoRestart, code => Assert.True(constants.ContainsKey(code), $"{code} in ExitCodes.NoRestart is no exit code constant"));
        Assert.True(ExitCodes.NoRestart.Order().SequenceEqual(prevented),
            $"RestartPreventExitStatus is {string.Join(" ", prevented)}; ExitCodes.NoRestart is {string.Join(" ", ExitCodes.NoRestart.Order().Select(c => $"{c} ({constants[c]})"))}");
        Assert.Equal(["on-failure"], unit["Restart"]);
        Assert.Equal(["SIGTERM"], unit["KillSignal"]);
        Assert.True(Seconds(Assert.Single(unit["TimeoutStopSec"])) > CliShutdownGrace().TotalSeconds,
            $"TimeoutStopSec must outlast the CLI's shutdown grace of {CliShutdownGrace().TotalSeconds} s");
        Assert.Matches(@"^/\S+/synchro-pipeline run( |$)", Assert.Single(unit["ExecStart"]));
        Assert.Equal(["yes"], unit["NoNewPrivileges"]);
        Assert.Equal(["strict"], unit["ProtectSystem"]);
        Assert.Equal(["yes"], unit["PrivateTmp"]);
        Assert.False(unit.ContainsKey("MemoryDenyWriteExecute"), "MemoryDenyWriteExecute stops the .NET JIT");
        Assert.Single(unit["User"]);

        // The spill directory is set through an option that exists, under the unit's own state directory.
        var environment = unit["Environment"].Select(e => e.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
        AssertOptions(environment.Keys);
        var state = "/var/lib/" + Assert.Single(unit["StateDirectory"]) + "/";
        Assert.StartsWith(state, environment["Synchro__SpillDirectory"], StringComparison.Ordinal);
    }

    [Fact]
    public void The_Kubernetes_manifest_runs_one_active_and_one_waiting_instance_with_a_bounded_spill_volume()
    {
        var documents = Manifest();
        var deployment = Assert.Single(documents, d => Scalar(d, "kind") == "Deployment");
        var spec = Map(deployment, "spec");
        var pod = Map(Map(spec, "template"), "spec");
        var container = (YamlMappingNode)Assert.Single(Sequence(pod, "containers"));

        Assert.Equal("2", Scalar(spec, "replicas"));
        Assert.Equal("Recreate", Scalar(Map(spec, "strategy"), "type"));
        Assert.True(int.Parse(Scalar(pod, "terminationGracePeriodSeconds"), CultureInfo.InvariantCulture) > CliShutdownGrace().TotalSeconds,
            $"terminationGracePeriodSeconds must outlast the CLI's shutdown grace of {CliShutdownGrace().TotalSeconds} s");
        var args = Sequence(container, "args").Select(a => ((YamlScalarNode)a).Value!).ToList();
        Assert.Equal("run", args[0]);
        Assert.Contains("--wait-for-lock", args);
        Assert.False(container.Children.ContainsKey("livenessProbe"), "a liveness probe would restart a pipeline that waits for its database by design");
        var probe = Sequence(Map(Map(container, "readinessProbe"), "exec"), "command").Select(a => ((YamlScalarNode)a).Value!).ToList();
        Assert.Equal("status", probe[1]);

        // Every setting given as an environment variable is an option; the spill directory lies in the spill volume,
        // whose size limit holds MaxSpillBytes.
        var environment = Sequence(container, "env").Cast<YamlMappingNode>()
            .ToDictionary(e => Scalar(e, "name"), e => e.Children.TryGetValue("value", out var v) ? ((YamlScalarNode)v).Value : null, StringComparer.Ordinal);
        AssertOptions(environment.Keys);
        var spillMount = Sequence(container, "volumeMounts").Cast<YamlMappingNode>()
            .Single(m => environment["Synchro__SpillDirectory"]!.StartsWith(Scalar(m, "mountPath") + "/", StringComparison.Ordinal));
        var spillVolume = Sequence(pod, "volumes").Cast<YamlMappingNode>().Single(v => Scalar(v, "name") == Scalar(spillMount, "name"));
        var sizeLimit = Quantity(Scalar(Map(spillVolume, "emptyDir"), "sizeLimit"));
        var maxSpill = environment.TryGetValue("Synchro__MaxSpillBytes", out var configured) ? Quantity(configured!) : new WalPipelineOptions().MaxSpillBytes;
        Assert.True(sizeLimit > maxSpill, $"the spill volume's sizeLimit ({sizeLimit} B) must exceed MaxSpillBytes ({maxSpill} B)");
        Assert.Contains(Sequence(container, "volumeMounts").Cast<YamlMappingNode>(), m => Scalar(m, "mountPath") == "/tmp");
        Assert.Equal("true", Scalar(Map(container, "securityContext"), "readOnlyRootFilesystem"));

        // The configuration file the arguments name is in the mounted ConfigMap, and reads as the CLI's settings.
        var configPath = args[args.IndexOf("--config") + 1];
        var configMount = Sequence(container, "volumeMounts").Cast<YamlMappingNode>().Single(m => configPath.StartsWith(Scalar(m, "mountPath") + "/", StringComparison.Ordinal));
        var configMap = Assert.Single(documents, d => Scalar(d, "kind") == "ConfigMap");
        var json = JsonNode.Parse(Scalar(Map(configMap, "data"), Path.GetFileName(configPath)))!;
        Assert.False(string.IsNullOrEmpty((string?)json["Synchro"]!["SlotName"]));
        Assert.Equal(Scalar(Map(configMap, "metadata"), "name"), Scalar(Map(Sequence(pod, "volumes").Cast<YamlMappingNode>().Single(v => Scalar(v, "name") == Scalar(configMount, "name")), "configMap"), "name"));
    }

    private static InstrumentInfo Single(string name) => Assert.Single(s_instruments.Value, i => i.Name == name);

    private static HashSet<string> KnownLabels() => s_instruments.Value.SelectMany(i => i.TagKeys).Select(PrometheusNames.Label)
        .Concat(s_scrapeLabels).ToHashSet(StringComparer.Ordinal);

    /// <summary>What in a PromQL expression is not what the code exports: metric names, histogram series, labels.</summary>
    /// <remarks>A query names a histogram's series; prose may name the histogram itself (<paramref name="prose"/>).</remarks>
    private static List<string> Problems(string expression, bool prose = false)
    {
        var problems = new List<string>();
        var byName = s_instruments.Value.ToDictionary(i => i.PrometheusName, StringComparer.Ordinal);
        foreach (var name in MetricNames().Matches(expression).Select(m => m.Value))
        {
            var known = byName.TryGetValue(name, out var instrument) && (prose || instrument.Kind != InstrumentKind.Histogram)
                || PrometheusNames.HistogramSeries.Any(series => name.EndsWith(series, StringComparison.Ordinal)
                    && byName.TryGetValue(name[..^series.Length], out var histogram) && histogram.Kind == InstrumentKind.Histogram);
            if (!known)
                problems.Add($"unknown metric {name}");
        }
        var labels = Matchers().Matches(expression).Select(m => m.Groups["label"].Value)
            .Concat(Groupings().Matches(expression).SelectMany(m => m.Groups["labels"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)))
            .Concat(LabelValues().Matches(expression).Select(m => m.Groups["label"].Value));
        problems.AddRange(labels.Where(l => !KnownLabels().Contains(l)).Distinct().Select(l => $"unknown label {l}"));
        return problems;
    }

    private static JsonNode Dashboard() => JsonNode.Parse(File.ReadAllText(Deploy("grafana-dashboard.json")))!;

    /// <summary>The dashboard's PromQL: panel targets' <c>expr</c>, variables' <c>query</c> and <c>definition</c>.</summary>
    private static IEnumerable<(string Where, string Expression)> DashboardExpressions()
    {
        var found = new List<(string, string)>();
        void Walk(JsonNode? node, string path)
        {
            switch (node)
            {
                case JsonObject obj:
                    foreach (var (key, value) in obj)
                    {
                        if (value is JsonValue v && key is "expr" or "query" or "definition" && v.TryGetValue<string>(out var text))
                            found.Add(($"grafana-dashboard.json {path}.{key}", text));
                        else
                            Walk(value, $"{path}.{key}");
                    }
                    break;
                case JsonArray array:
                    for (var i = 0; i < array.Count; i++)
                        Walk(array[i], $"{path}[{i}]");
                    break;
            }
        }
        Walk(Dashboard(), "$");
        return found;
    }

    private static List<AlertRule> AlertRules()
    {
        var deserializer = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        var file = deserializer.Deserialize<RuleFile>(File.ReadAllText(Deploy("prometheus-alerts.yaml")));
        return file.Groups.SelectMany(g => g.Rules).ToList();
    }

    private static IEnumerable<(string Where, string Expression)> AlertExpressions() => AlertRules().Select(r => ($"prometheus-alerts.yaml {r.Alert}", r.Expr));

    private static List<YamlMappingNode> Manifest()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Deploy("kubernetes.yaml"))));
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static YamlMappingNode Map(YamlMappingNode node, string key) => (YamlMappingNode)node[key];

    private static YamlSequenceNode Sequence(YamlMappingNode node, string key) => (YamlSequenceNode)node[key];

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node[key]).Value!;

    /// <summary>Each <c>Synchro__X</c> variable names an option <c>X</c> of <see cref="WalPipelineOptions"/>.</summary>
    private static void AssertOptions(IEnumerable<string> variables)
    {
        var settings = variables.Where(v => v.StartsWith("Synchro__", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(settings);
        Assert.All(settings, variable => Assert.True(typeof(WalPipelineOptions).GetProperty(variable["Synchro__".Length..]) is not null,
            $"{variable} names no option of WalPipelineOptions"));
    }

    /// <summary>A unit file's settings, each key with its values in order (comments and section headers left out).</summary>
    private static Dictionary<string, List<string>> UnitSettings(string[] lines)
    {
        var settings = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var line in lines.Select(l => l.Trim()).Where(l => l.Length > 0 && l[0] is not ('#' or ';' or '[')))
        {
            var (key, value) = (line[..line.IndexOf('=', StringComparison.Ordinal)], line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            if (!settings.TryGetValue(key, out var values))
                settings[key] = values = [];
            values.Add(value);
        }
        return settings;
    }

    private static double Seconds(string timespan) => Regex.Match(timespan, @"^(?<n>\d+)(?<unit>s|min)?$") is { Success: true } m
        ? double.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture) * (m.Groups["unit"].Value == "min" ? 60 : 1)
        : throw new FormatException($"unexpected time span {timespan}");

    /// <summary>A Kubernetes quantity (<c>1536Mi</c>) or a pipeline byte size (<c>1GiB</c>) in bytes.</summary>
    private static long Quantity(string text) => Regex.Match(text, @"^(?<n>\d+)(?<unit>Ki|Mi|Gi|KiB|MiB|GiB)?$") is { Success: true } m
        ? long.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture) << (m.Groups["unit"].Value.TrimEnd('B') switch { "Ki" => 10, "Mi" => 20, "Gi" => 30, _ => 0 })
        : throw new FormatException($"unexpected size {text}");

    /// <summary>How long the CLI waits for a command to stop on SIGTERM, read from its Program.cs.</summary>
    private static TimeSpan CliShutdownGrace()
    {
        var program = File.ReadAllText(Path.Combine(EventIdTests.RepositoryRoot(), "src", "Synchro.Pipeline.Cli", "Program.cs"));
        var match = ShutdownGrace().Match(program);
        Assert.True(match.Success, "src/Synchro.Pipeline.Cli/Program.cs no longer sets shutdownGrace = TimeSpan.FromSeconds(n): update this test's pattern");
        return TimeSpan.FromSeconds(int.Parse(match.Groups["seconds"].Value, CultureInfo.InvariantCulture));
    }

    private static HashSet<int> EventIdConstants() => new[] { typeof(Synchro.Pipeline.Diagnostics.EventIds), typeof(Synchro.Pipeline.Cli.Logging.CliEventIds) }
        .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static))
        .Where(f => f is { IsLiteral: true } && f.FieldType == typeof(int))
        .Select(f => (int)f.GetRawConstantValue()!)
        .ToHashSet();

    [GeneratedRegex(@"\bsynchro_pipeline_[a-zA-Z0-9_]+")]
    private static partial Regex MetricNames();

    [GeneratedRegex(@"(?<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*""")]
    private static partial Regex Matchers();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\((?<labels>[^)]*)\)")]
    private static partial Regex Groupings();

    [GeneratedRegex(@"\blabel_values\([^,()]*(?:\{[^}]*\})?\s*,\s*(?<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)")]
    private static partial Regex LabelValues();

    [GeneratedRegex(@"\$labels\.(?<label>[a-zA-Z_][a-zA-Z0-9_]*)")]
    private static partial Regex TemplateLabels();

    [GeneratedRegex(@"shutdownGrace\s*=\s*TimeSpan\.FromSeconds\((?<seconds>\d+)\)")]
    private static partial Regex ShutdownGrace();

    private sealed class RuleFile
    {
        public List<RuleGroup> Groups { get; set; } = [];
    }

    private sealed class RuleGroup
    {
        public string Name { get; set; } = "";
        public List<AlertRule> Rules { get; set; } = [];
    }

    private sealed class AlertRule
    {
        public string Alert { get; set; } = "";
        public string Expr { get; set; } = "";
        public string For { get; set; } = "";
        public Dictionary<string, string> Labels { get; set; } = [];
        public Dictionary<string, string> Annotations { get; set; } = [];
    }
}
