using System.CommandLine;
using Synchro.Pipeline.Cli;

var root = new RootCommand("Turns a PostgreSQL logical replication slot into a bucketed sync changelog.")
{
    DemoCommand.Create(),
    RunCommand.Create(),
    MigrateCommand.Create(),
    StatusCommand.Create(),
    CheckCommand.Create(),
};
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
