using System.CommandLine;
using Synchro.Pipeline.Cli.Demo;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline demo</c>: a throwaway PostgreSQL server, a pgbench workload consumed live by the
/// pipeline, then the changelog verified against the source.
/// </summary>
internal static class DemoCommand
{
    // A plain `demo` finishes in well under a minute on a 2-core machine: ~5 s of server start, the
    // workload, about a second to catch up, a second to verify.
    private const int DefaultDurationSeconds = 20;
    private const int DefaultClients = 4;

    // Low enough that a 2-core machine running server, pgbench and pipeline keeps the lag near zero.
    private const int DefaultRate = 500;

    public static Command Create()
    {
        var duration = new Option<int>("--duration", "-d")
        {
            Description = "How long the pgbench workload runs, in seconds.",
            DefaultValueFactory = _ => DefaultDurationSeconds,
            HelpName = "seconds",
        };
        duration.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > 3600)
                result.AddError("--duration must be between 1 and 3600 seconds.");
        });

        // No short alias: -c is --config on every other command.
        var clients = new Option<int>("--clients")
        {
            Description = "pgbench clients (concurrent connections).",
            DefaultValueFactory = _ => DefaultClients,
        };
        clients.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > 100)
                result.AddError("--clients must be between 1 and 100.");
        });

        var rate = new Option<int>("--rate", "-R")
        {
            Description = "Total pgbench transactions per second (pgbench -R); 0 runs unthrottled.",
            DefaultValueFactory = _ => DefaultRate,
            HelpName = "tps",
        };
        rate.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 0)
                result.AddError("--rate must be 0 (unthrottled) or more.");
        });

        var keep = new Option<bool>("--keep")
        {
            Description = "Leave the server running after the demo and print how to connect and stop it (Ctrl+C still deletes it).",
        };
        var pgVersion = new Option<int?>("--pg-version")
        {
            Description = "The PostgreSQL major version to run, 15 to 18 (default: SYNCHRO_PG_VERSION, else the newest installed); "
                + "one not installed is fetched once with npm and cached.",
            HelpName = "major",
        };
        pgVersion.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 15 or > 18)
                result.AddError("--pg-version must be a PostgreSQL major version from 15 to 18.");
        });

        var verbose = new Option<bool>("--verbose", "-v")
        {
            Description = "Log the pipeline's information messages, not just warnings (to standard error).",
        };

        var command = new Command(
            "demo",
            "Starts a throwaway PostgreSQL server, runs a pgbench workload the pipeline consumes live, then verifies the changelog against the source.")
        {
            duration,
            clients,
            rate,
            keep,
            pgVersion,
            verbose,
        };
        command.SetAction((parseResult, ct) => DemoRunner.RunAsync(
            new DemoOptions(
                TimeSpan.FromSeconds(parseResult.GetValue(duration)),
                parseResult.GetValue(clients),
                parseResult.GetValue(rate),
                parseResult.GetValue(keep),
                parseResult.GetValue(pgVersion),
                parseResult.GetValue(verbose)),
            Console.Out,
            Console.Error,
            ct));
        return command;
    }
}
