using System.CommandLine;
using System.CommandLine.Invocation;
using Synchro.Pipeline.Cli;

// How long Ctrl+C / SIGTERM waits for a command to stop cleanly (run rolls back the batch in flight and closes
// its connections, well under a second); past it System.CommandLine exits with 130 (SIGINT) or 143 (SIGTERM).
var shutdownGrace = TimeSpan.FromSeconds(30);

var root = new RootCommand("Turns a PostgreSQL logical replication slot into a bucketed sync changelog.")
{
    DemoCommand.Create(),
    RunCommand.Create(),
    MigrateCommand.Create(),
    StatusCommand.Create(),
    CheckCommand.Create(),
};
var parse = root.Parse(args);
var exitCode = await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = shutdownGrace }).ConfigureAwait(false);
return parse.Action is ParseErrorAction ? ExitCodes.Usage : exitCode;
