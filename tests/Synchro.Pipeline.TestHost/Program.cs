using Synchro.Pipeline;
using Synchro.Pipeline.Registry;

// Usage: Synchro.Pipeline.TestHost <connection string> <slot> <publication> <table> <owner column> <max batch rows> [two-phase]
// Runs until killed or until stdin closes; exit code 0 after a clean stop, 2 on a fatal pipeline error.
if (args.Length is not (6 or 7) || (args.Length == 7 && args[6] != "two-phase"))
{
    Console.Error.WriteLine("usage: Synchro.Pipeline.TestHost <connection string> <slot> <publication> <table> <owner column> <max batch rows> [two-phase]");
    return 64;
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
    Tables = new TableRegistry().Add(new TableRegistration(args[3]) { OwnerColumn = args[4] }),
    MaxBatchRows = int.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture),
    BatchLinger = TimeSpan.FromMilliseconds(5),
    StatusInterval = TimeSpan.FromSeconds(1),
    MaxReconnectDelay = TimeSpan.FromSeconds(1),
    TwoPhase = args.Length == 7,
};

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
