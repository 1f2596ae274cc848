using System.CommandLine;
using System.CommandLine.Invocation;
using Synchro.Pipeline.Cli;

// Socket completions run on the epoll thread rather than being queued to the thread pool, and the pipeline then
// coalesces reads and decodes inline too (WalPipelineOptions.ReadCoalescing, on when this is): the read path's CPU per
// change halves (docs/performance.md). Set before the first socket exists, which is when the runtime reads it; an
// explicit DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 wins.
SocketCompletions.EnableInline();

// How long Ctrl+C / SIGTERM waits for a command to stop cleanly (run finishes the batch in flight and closes
// its connections, well under a second); past it System.CommandLine exits with 130 (SIGINT) or 143 (SIGTERM).
var shutdownGrace = TimeSpan.FromSeconds(30);

var root = new RootCommand("Turns a PostgreSQL logical replication slot into a bucketed sync changelog.")
{
    DemoCommand.Create(),
    RunCommand.Create(),
    MigrateCommand.Create(),
    StatusCommand.Create(),
    CheckCommand.Create(),
    ReplayFailuresCommand.Create(),
    CompactCommand.Create(),
    SkipCommand.Create(),
};
// The root's --version on every command too: `synchro-pipeline run --version` answers instead of failing to parse.
foreach (var command in root.Subcommands)
    command.Options.Add(new VersionOption());
var parse = root.Parse(args);
var exitCode = await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = shutdownGrace }).ConfigureAwait(false);
return parse.Action is ParseErrorAction ? ExitCodes.Usage : exitCode;
