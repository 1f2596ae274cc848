using System.Globalization;
using System.Text.Json.Serialization;

namespace Synchro.Pipeline.LoadHarness;

/// <summary>What the source's publication <c>bench_pub</c> publishes.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PublicationScope>))]
internal enum PublicationScope
{
    /// <summary><c>FOR TABLE orders, order_lines</c>: the registered tables only.</summary>
    [JsonStringEnumMemberName("tables")]
    Tables,

    /// <summary><c>FOR ALL TABLES</c>: with the changelog in the source database, the sidecar tables too.</summary>
    [JsonStringEnumMemberName("all-tables")]
    AllTables,
}

/// <summary>
/// The harness's command line: <c>--changes N --go-changes N --steady-seconds N --steady-clients N --big-transaction N
/// --idle-seconds N --out DIR --timeout-scale X --binary --changelog-in-source --publication all-tables|tables</c>.
/// </summary>
internal sealed record HarnessOptions
{
    public long Changes { get; init; } = 1_000_000;
    public long GoChanges { get; init; } = 20_000;
    public int SteadySeconds { get; init; } = 60;
    public int SteadyClients { get; init; } = 4;

    /// <summary>The steady state's pgbench rate in transactions per second (pgbench <c>-R</c>); null runs it unthrottled.</summary>
    public int? SteadyRate { get; init; }
    public long BigTransactionRows { get; init; } = 1_000_000;
    public string OutputDirectory { get; init; } = "results";

    /// <summary>Multiplies every contender's time limit (a slow or busy machine).</summary>
    public double TimeoutScale { get; init; } = 1.0;

    /// <summary>Our pipeline runs in binary tuple mode (<see cref="Pipeline.WalPipelineOptions.BinaryTupleMode"/>).</summary>
    public bool BinaryTuples { get; init; }

    /// <summary>
    /// Our pipeline writes its changelog into the source database (<see cref="Pipeline.WalPipelineOptions.ChangelogConnectionString"/>
    /// null, the default deployment) instead of a database of its own per phase.
    /// </summary>
    public bool ChangelogInSource { get; init; }

    /// <summary>Our pipeline sets <c>FilterOriginsOnServer</c> (pgoutput <c>origin 'none'</c> on PostgreSQL 16+).</summary>
    public bool FilterOriginsOnServer { get; init; }

    public PublicationScope Publication { get; init; } = PublicationScope.Tables;

    /// <summary>
    /// Catch-up only: the changelog is migrated beforehand and given the Go reference's <c>(table_name, record_id)</c>
    /// index by hand (the migration drops it), to measure what that index costs the writer.
    /// </summary>
    public bool RecordIndex { get; init; }

    /// <summary>Catch-up and the steady state: an <see cref="System.Diagnostics.ActivityListener"/> records every span of the pipeline, to measure what tracing costs.</summary>
    public bool Traced { get; init; }

    /// <summary>Every drain's WAL broken down by relation with pg_waldump (slow: every record is read as text).</summary>
    public bool WalByRelation { get; init; }

    /// <summary>
    /// The server preloads pg_stat_statements; every phase the server-cost sampler measures reports the statements it
    /// executed, the most expensive first.
    /// </summary>
    public bool Statements { get; init; }

    /// <summary>Catch-up only: a CHECKPOINT just before the drain, so that the drain's first change to each page logs a full-page image.</summary>
    public bool CheckpointBeforeDrain { get; init; }

    /// <summary>Catch-up only: changelog rows written before the backlog (<see cref="CatchUp.ChangelogPrefill"/>); 0 leaves the changelog to the drain.</summary>
    public long PrefillChangelog { get; init; }

    /// <summary>Catch-up only: a CHECKPOINT every this many seconds while the drain runs; 0 for none.</summary>
    public int CheckpointEverySeconds { get; init; }

    /// <summary>postgresql.conf settings of the throwaway server over the harness's own (<see cref="HarnessRunner.ServerOptions"/>), in the order given.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ServerSettings { get; init; } = [];

    /// <summary>The <c>streaming-protocols</c> verb: drains per protocol.</summary>
    public int Runs { get; init; } = 3;

    /// <summary>Seconds of the idle phase (the pipeline running, nothing else writing); 0 skips it.</summary>
    public int IdleSeconds { get; init; }

    /// <summary>The <c>compaction</c> verb: the second backlog, drained once alone and once beside compaction; null = a fifth of <see cref="Changes"/>, at most 1,000,000.</summary>
    public long? WriterChanges { get; init; }

    /// <summary>The <c>compaction</c> verb: reader pages timed per bucket count (when the reader is built in); 0 skips them.</summary>
    public int ReaderPages { get; init; } = 200;

    public const string Usage = """
        usage: Synchro.Pipeline.LoadHarness [--changes N] [--go-changes N] [--steady-seconds N] [--steady-clients N] [--big-transaction N] [--idle-seconds N]
                                            [--out DIR] [--timeout-scale X] [--binary] [--changelog-in-source] [--publication all-tables|tables] [--traced]
                                            [--wal-by-relation] [--statements]
          --changes         backlog size in row changes (default 1000000)
          --go-changes      slice drained by the Go reference's per-change design (default 20000)
          --steady-seconds  steady-state pgbench duration, run once without and once with the pipeline (default 60; 0 skips it)
          --steady-clients  pgbench clients in the steady state (default 4)
          --steady-rate     the steady state's pgbench throttled to N transactions/s (pgbench -R; default unthrottled)
          --big-transaction rows inserted by one transaction, drained end to end for its peak memory (default 1000000; 0 skips it)
          --idle-seconds    after the other phases, the pipeline running with nothing else writing: WAL written, batches,
                            position moves and walsender CPU (default 0: skipped)
          --out             directory for load-harness.json and load-harness.md (default results)
          --timeout-scale   multiplies every contender's time limit (default 1)
          --binary          our pipeline asks for binary tuples (BinaryTupleMode) instead of text
          --changelog-in-source  our pipeline writes its changelog into the source database (ChangelogConnectionString
                            null, the default deployment) instead of a database of its own per phase
          --filter-origins-on-server  our pipeline sets FilterOriginsOnServer (pgoutput origin 'none', PostgreSQL 16+)
          --publication     tables: FOR TABLE orders, order_lines (default); all-tables: FOR ALL TABLES, which also
                            publishes the sidecar tables when they are in the source database
        quick run: --changes 50000 --steady-seconds 10 --go-changes 2000 --big-transaction 50000
        catch-up of our pipeline alone: Synchro.Pipeline.LoadHarness catch-up [--changes N] [--timeout-scale X] [--binary]
                                        [--changelog-in-source] [--publication all-tables|tables] [--record-index] [--traced] [--wal-by-relation] [--checkpoint]
                                        [--prefill-changelog N] [--checkpoint-every S] [--server-setting name=value ...]
                                        [--statements]
          --record-index    (catch-up) the changelog keeps the reference's (table_name, record_id) index, created by hand
          --traced          (catch-up, steady state) a listener records every span of the Synchro.Pipeline activity source (all data)
          --wal-by-relation (harness, catch-up) each phase's WAL by relation and resource manager, read with pg_waldump
                            (of the server's major version; slow: every record is read as text)
          --checkpoint      (catch-up) a CHECKPOINT just before the drain: its first change to each page logs a full-page image
          --statements      (harness, catch-up) the server preloads pg_stat_statements, reset before each phase the server
                            cost is measured over and read after it: its statements by execution time, pgbench's apart
          --prefill-changelog N  (catch-up) before the backlog, N changelog rows (and the edges) of as many source orders and
                            lines as N/3, then VACUUM (ANALYZE) and CHECKPOINT: the drain writes into existing index pages
          --checkpoint-every S  (catch-up) a CHECKPOINT every S seconds during the drain
          --server-setting name=value  (every verb, repeatable) a postgresql.conf setting of the throwaway server, e.g.
                            full_page_writes=on (its default here is off), wal_compression=lz4
        every phase reports the server's CPU per process kind (writer backends by application_name, walsender, walwriter,
        checkpointer, bgwriter, autovacuum, other backends, other server processes; from /proc) and the WAL it wrote
        (insert LSN difference, pg_stat_wal, and pg_waldump --stats's full-page-image share when a matching pg_waldump exists)
        changelog compaction: Synchro.Pipeline.LoadHarness compaction [--changes N] [--writer-changes M] [--reader-pages P]
                                        [--out DIR] [--timeout-scale X] [--binary]
          (a changelog of about N rows in the source database, compacted: rows removed, WAL, memory, sizes; then a backlog
          of M changes (default N/5, at most 1000000) drained alone and beside a compaction loop; P reader pages per bucket count, default 200)
        pgoutput protocol 2 against 4 (PostgreSQL 16+, SYNCHRO_PG_BINDIR): Synchro.Pipeline.LoadHarness streaming-protocols
                                        [--big-transaction N] [--runs R] [--out DIR] [--timeout-scale X] [--binary]
          (the big transaction drained end to end R times per protocol, alternating; default 3 runs)
        """;

    /// <exception cref="FormatException">An unknown flag, a missing or bad value.</exception>
    public static HarnessOptions Parse(IReadOnlyList<string> args)
    {
        var options = new HarnessOptions();
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] is "--binary" or "--changelog-in-source" or "--filter-origins-on-server" or "--record-index" or "--traced" or "--wal-by-relation" or "--checkpoint" or "--statements")
            {
                options = args[i] switch
                {
                    "--binary" => options with { BinaryTuples = true },
                    "--changelog-in-source" => options with { ChangelogInSource = true },
                    "--record-index" => options with { RecordIndex = true },
                    "--traced" => options with { Traced = true },
                    "--wal-by-relation" => options with { WalByRelation = true },
                    "--checkpoint" => options with { CheckpointBeforeDrain = true },
                    "--statements" => options with { Statements = true },
                    _ => options with { FilterOriginsOnServer = true },
                };
                continue;
            }
            var value = i + 1 < args.Count ? args[i + 1] : throw new FormatException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--changes" => options with { Changes = Positive(args[i], value) },
                "--go-changes" => options with { GoChanges = Positive(args[i], value) },
                "--steady-seconds" => options with { SteadySeconds = (int)NonNegative(args[i], value) },
                "--steady-clients" => options with { SteadyClients = (int)Positive(args[i], value) },
                "--steady-rate" => options with { SteadyRate = (int)Positive(args[i], value) },
                "--big-transaction" => options with { BigTransactionRows = NonNegative(args[i], value) },
                "--idle-seconds" => options with { IdleSeconds = (int)NonNegative(args[i], value) },
                "--writer-changes" => options with { WriterChanges = Positive(args[i], value) },
                "--reader-pages" => options with { ReaderPages = (int)NonNegative(args[i], value) },
                "--runs" => options with { Runs = (int)Positive(args[i], value) },
                "--publication" => options with { Publication = ParsePublication(value) },
                "--out" => options with { OutputDirectory = value },
                "--prefill-changelog" => options with { PrefillChangelog = NonNegative(args[i], value) },
                "--checkpoint-every" => options with { CheckpointEverySeconds = (int)Positive(args[i], value) },
                "--server-setting" => options with { ServerSettings = [.. options.ServerSettings, ParseSetting(value)] },
                "--timeout-scale" => options with { TimeoutScale = double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture) },
                _ => throw new FormatException($"unknown option {args[i]}"),
            };
            i++;
        }
        return options;
    }

    /// <summary>The flags that differ from the defaults, as they are typed: the report's command line.</summary>
    public string CommandLine()
        => string.Create(CultureInfo.InvariantCulture,
            $"--changes {Changes} --go-changes {GoChanges} --steady-seconds {SteadySeconds} --steady-clients {SteadyClients}{(SteadyRate is { } rate ? $" --steady-rate {rate}" : "")} --big-transaction {BigTransactionRows}")
            + (IdleSeconds > 0 ? string.Create(CultureInfo.InvariantCulture, $" --idle-seconds {IdleSeconds}") : "")
            + $" --out {OutputDirectory}"
            + (BinaryTuples ? " --binary" : "")
            + (ChangelogInSource ? " --changelog-in-source" : "")
            + (FilterOriginsOnServer ? " --filter-origins-on-server" : "")
            + (RecordIndex ? " --record-index" : "")
            + (Traced ? " --traced" : "")
            + (WalByRelation ? " --wal-by-relation" : "")
            + (CheckpointBeforeDrain ? " --checkpoint" : "")
            + (Statements ? " --statements" : "")
            + (PrefillChangelog > 0 ? string.Create(CultureInfo.InvariantCulture, $" --prefill-changelog {PrefillChangelog}") : "")
            + (CheckpointEverySeconds > 0 ? string.Create(CultureInfo.InvariantCulture, $" --checkpoint-every {CheckpointEverySeconds}") : "")
            + string.Concat(ServerSettings.Select(s => $" --server-setting {s.Key}={s.Value}"))
            + (Publication == PublicationScope.AllTables ? " --publication all-tables" : "");

    private static PublicationScope ParsePublication(string value) => value switch
    {
        "tables" => PublicationScope.Tables,
        "all-tables" => PublicationScope.AllTables,
        _ => throw new FormatException($"--publication: '{value}' is neither all-tables nor tables"),
    };

    private static KeyValuePair<string, string> ParseSetting(string value)
        => value.IndexOf('=', StringComparison.Ordinal) is > 0 and var equals
            ? new(value[..equals], value[(equals + 1)..])
            : throw new FormatException($"--server-setting: '{value}' is not name=value");

    private static long Positive(string name, string value)
        => NonNegative(name, value) is > 0 and var n ? n : throw new FormatException($"{name} must be positive");

    private static long NonNegative(string name, string value)
        => long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new FormatException($"{name}: '{value}' is not a whole number");
}
