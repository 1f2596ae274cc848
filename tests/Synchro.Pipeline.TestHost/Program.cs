using Microsoft.Extensions.Logging;
using Synchro.Pipeline;
using Synchro.Pipeline.Registry;

// Usage: Synchro.Pipeline.TestHost <connection string> <slot> <publication> <table> <owner column> <max batch rows> [two-phase] [wait-for-lock] [child=<table>:<foreign key column>] [chunk-rows=<n>]
// child= registers a child table of <table> that takes its buckets through the parent chain (so owner changes cascade to it);
// chunk-rows= sets the cascade's rows per fetch; wait-for-lock waits as a passive instance while another holds the slot (WaitForLock).
// Runs until killed or until stdin closes; exit code 0 after a clean stop, 2 on a fatal pipeline error.
// The pipeline's events of level Information and up go to standard error, one line each: "event <id> <level>: <message>".
const string Usage = "usage: Synchro.Pipeline.TestHost <connection string> <slot> <publication> <table> <owner column> <max batch rows> [two-phase] [wait-for-lock] [child=<table>:<foreign key column>] [chunk-rows=<n>] [id=<column>,<column>...]";
if (args.Length < 6)
{
    Console.Error.WriteLine(Usage);
    return 64;
}

// The table's id columns: `id` unless an id= option names them.
var idColumns = args.Skip(6).FirstOrDefault(a => a.StartsWith("id=", StringComparison.Ordinal))?[3..].Split(',') ?? ["id"];
var tables = new TableRegistry().Add(new TableRegistration(args[3]) { OwnerColumn = args[4], IdColumns = idColumns });
var twoPhase = false;
var waitForLock = false;
int? chunkRows = null;
foreach (var option in args.Skip(6))
{
    if (option == "two-phase")
    {
        twoPhase = true;
    }
    else if (option == "wait-for-lock")
    {
        waitForLock = true;
    }
    else if (option.StartsWith("child=", StringComparison.Ordinal) && option[6..].Split(':') is [{ Length: > 0 } child, { Length: > 0 } foreignKey])
    {
        tables.Add(new TableRegistration(child) { ParentTable = args[3], ParentForeignKeyColumn = foreignKey, SoftDeleteColumn = null });
    }
    else if (option.StartsWith("id=", StringComparison.Ordinal))
    {
    }
    else if (option.StartsWith("chunk-rows=", StringComparison.Ordinal) && int.TryParse(option[11..], System.Globalization.CultureInfo.InvariantCulture, out var rows) && rows > 0)
    {
        chunkRows = rows;
    }
    else
    {
        Console.Error.WriteLine($"unknown option '{option}'; {Usage}");
        return 64;
    }
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();

var options = new WalPipelineOptions
{
    ConnectionString = args[0],
    SlotName = args[1],
    PublicationName = args[2],
    Tables = tables,
    MaxBatchRows = int.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture),
    BatchLinger = TimeSpan.FromMilliseconds(5),
    StatusInterval = TimeSpan.FromSeconds(1),
    MaxReconnectDelay = TimeSpan.FromSeconds(1),
    TwoPhase = twoPhase,
    WaitForLock = waitForLock,
    LoggerFactory = new StandardErrorLoggerFactory(),
};
if (chunkRows is { } chunk)
    options.CascadeChunkRows = chunk;

await using var pipeline = new WalPipeline(options);
try
{
    Console.WriteLine("running");
    await pipeline.RunAsync(stop.Token);
    return 0;
}
catch (WalPipelineException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

/// <summary>Writes each event of level Information and up to standard error as one line, for the test that runs this process.</summary>
internal sealed class StandardErrorLoggerFactory : ILoggerFactory, ILogger
{
    private readonly Lock _lock = new();

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
            return;
        var line = $"event {eventId.Id} {logLevel}: {formatter(state, exception).ReplaceLineEndings(" ")}";
        lock (_lock)
            Console.Error.WriteLine(line);
    }

    public void Dispose()
    {
    }
}
