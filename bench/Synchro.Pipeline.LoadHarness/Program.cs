using Synchro.Pipeline.LoadHarness;
using Synchro.Pipeline.LoadHarness.CatchUp;
using Synchro.Pipeline.LoadHarness.Compaction;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.StreamingProtocols;

// As the CLI does: socket completions inline, and our pipeline's read coalescing on with them, so it reads the way it
// runs for users. Set before the first socket exists; contender processes inherit it.
SocketCompletions.EnableInline();

// Two roles in one executable: the harness, and (re-invoked by it) one contender per child process,
// so each contender's CPU seconds and peak RSS are its own.
if (args.Length >= 1 && args[0] == ContenderHost.Verb)
    return await ContenderHost.RunAsync(args);

// The catch-up alone (CatchUpRunner) and the changelog's compaction (CompactionRunner): the same options, after the verb.
var verb = args.Length >= 1 && args[0] is CatchUpRunner.Verb or CompactionRunner.Verb or StreamingProtocolRunner.Verb ? args[0] : null;
HarnessOptions options;
try
{
    options = HarnessOptions.Parse(verb is null ? args : args[1..]);
}
catch (FormatException e)
{
    await Console.Error.WriteLineAsync($"{e.Message}\n{HarnessOptions.Usage}");
    return 2;
}

using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    interrupt.Cancel();
};
try
{
    return verb switch
    {
        CatchUpRunner.Verb => await CatchUpRunner.RunAsync(options, interrupt.Token),
        CompactionRunner.Verb => await CompactionRunner.RunAsync(options, interrupt.Token),
        StreamingProtocolRunner.Verb => await StreamingProtocolRunner.RunAsync(options, interrupt.Token),
        _ => await HarnessRunner.RunAsync(options, interrupt.Token),
    };
}
catch (Exception e) when (e is not OperationCanceledException)
{
    // The backlog or the server failed: nothing to compare, so no report.
    await Console.Error.WriteLineAsync($"load harness failed: {e}");
    return 1;
}
