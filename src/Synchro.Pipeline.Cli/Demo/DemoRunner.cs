using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Cli.Demo;

/// <summary>
/// The demo: a throwaway server, the demo schema, a pgbench workload consumed live by an in-process
/// <see cref="WalPipeline"/>, a bounded wait for it to catch up, a clean stop, and the verification.
/// </summary>
internal static class DemoRunner
{
    private static readonly TimeSpan s_tick = TimeSpan.FromSeconds(1);

    // Start-up is a few queries and the slot check; anything longer means something is wrong.
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(30);

    // Catching up after the workload: a base allowance plus the workload's own length, so a backlog built
    // by an unthrottled run (--rate 0) can drain at a fraction of the rate it was produced.
    private static readonly TimeSpan s_catchUpAllowance = TimeSpan.FromSeconds(30);

    // A short status interval (also the heartbeat period): when caught up, the heartbeat moves the position past the
    // WAL written after the last workload transaction within about a second.
    private static readonly TimeSpan s_statusInterval = TimeSpan.FromSeconds(1);

    public static async Task<int> RunAsync(DemoOptions options, TextWriter output, TextWriter error, CancellationToken ct)
    {
        using var loggers = CreateLoggerFactory(options.Verbose);
        var progress = new ProgressLine(output, interactive: !Console.IsOutputRedirected);
        var started = Stopwatch.GetTimestamp();

        LocalPostgresServer server;
        try
        {
            server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = options.PgVersion }, ct).ConfigureAwait(false);
        }
        catch (LocalPostgresException e)
        {
            error.WriteLine($"demo: {e.Message}");
            return ExitCodes.Configuration;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            error.WriteLine("demo: interrupted while starting the server");
            return ExitCodes.Ok;
        }

        var keep = options.Keep;
        try
        {
            output.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"PostgreSQL {server.ServerVersion} started in {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s on 127.0.0.1:{server.Port} (data directory {server.DataDirectory})"));
            return await RunOnServerAsync(server, options, loggers, progress, output, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            keep = false;
            progress.WriteLine("interrupted: the pipeline and pgbench were stopped");
            return ExitCodes.Ok;
        }
        catch (Exception e) when (ExitCodeFor(e) is { } code)
        {
            progress.End();
            error.WriteLine($"demo: {e.Message}");
            return code;
        }
        finally
        {
            progress.End();
            if (keep)
            {
                server.Detach();
                // Over the Unix socket, which only this account can reach, nothing secret needs printing; TCP asks for the password in the file.
                var psql = ClientProgramOrName(server, "psql");
                output.WriteLine($"the server keeps running: {server.SocketConnectionString(DemoDatabase.Name)}");
                output.WriteLine($"  {psql} -h {server.SocketDirectory} -p {server.Port} -U postgres {DemoDatabase.Name}");
                output.WriteLine($"  over TCP (127.0.0.1:{server.Port}) it asks for the password in {server.PasswordFile}:");
                output.WriteLine($"  PGPASSFILE={server.PasswordFile} {psql} -h 127.0.0.1 -p {server.Port} -U postgres {DemoDatabase.Name}");
                output.WriteLine($"  stop it with: {server.StopCommand}");
                output.WriteLine($"  then delete it: rm -rf {server.RootDirectory}");
            }
            else
            {
                await server.DisposeAsync().ConfigureAwait(false);
                output.WriteLine($"server stopped and {server.RootDirectory} deleted");
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"demo took {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s"));
        }
    }

    private static async Task<int> RunOnServerAsync(
        LocalPostgresServer server,
        DemoOptions options,
        ILoggerFactory loggers,
        ProgressLine progress,
        TextWriter output,
        CancellationToken ct)
    {
        var connectionString = await server.CreateDatabaseAsync(DemoDatabase.Name, ct).ConfigureAwait(false);
        await using var database = NpgsqlDataSource.Create(connectionString);
        await DemoDatabase.CreateAsync(database, DemoDatabase.SlotName, ct).ConfigureAwait(false);
        output.WriteLine(
            $"database {DemoDatabase.Name}: users, orders (owner user_id, soft delete), order_lines (child of orders), categories (global); "
            + $"publication {DemoDatabase.PublicationName}, slot {DemoDatabase.SlotName}");

        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = connectionString,
            SlotName = DemoDatabase.SlotName,
            PublicationName = DemoDatabase.PublicationName,
            Tables = DemoDatabase.Registry(),
            // The demo creates the slot before any row exists: there are no edges to load.
            InitialSnapshot = false,
            StatusInterval = s_statusInterval,
            ReadCoalescing = SocketCompletions.Inline,
            LoggerFactory = loggers,
        });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = pipeline.RunAsync(stop.Token);
        try
        {
            await WaitUntilRunningAsync(pipeline, running, ct).ConfigureAwait(false);
            await DemoDatabase.SeedAsync(database, ct).ConfigureAwait(false);

            var rate = options.Rate > 0 ? string.Create(CultureInfo.InvariantCulture, $"at most {options.Rate:N0} transactions/s") : "unthrottled";
            output.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"pgbench: {options.Duration.TotalSeconds:F0} s, {options.Clients} clients, {rate}: new orders with lines, updates, owner changes, soft and hard deletes, multi-row transactions"));

            var status = new StatusLine(pipeline.GetStatus());
            long transactions;
            await using (var workload = await DemoWorkload.StartAsync(
                server.ClientProgram("pgbench"), connectionString, (int)options.Duration.TotalSeconds, options.Clients, options.Rate, ct).ConfigureAwait(false))
            {
                var finished = workload.WaitAsync(ct);
                while (!finished.IsCompleted)
                {
                    await Task.WhenAny(finished, running, Task.Delay(s_tick, ct)).ConfigureAwait(false);
                    ct.ThrowIfCancellationRequested();
                    await ThrowIfStoppedAsync(running).ConfigureAwait(false);
                    progress.Update(status.Format("workload", pipeline.GetStatus()));
                }

                transactions = await finished.ConfigureAwait(false);
            }

            var workloadEnd = await CurrentWalInsertPositionAsync(database, ct).ConfigureAwait(false);
            var catchUpStarted = Stopwatch.GetTimestamp();
            await WaitForCatchUpAsync(pipeline, running, workloadEnd, s_catchUpAllowance + options.Duration, ct,
                s => progress.Update(status.Format("catching up", s))).ConfigureAwait(false);
            var caughtUpIn = Stopwatch.GetElapsedTime(catchUpStarted);

            var final = pipeline.GetStatus();
            progress.Update(status.Format("caught up", final), force: true);
            await stop.CancelAsync().ConfigureAwait(false);
            await running.ConfigureAwait(false);
            progress.End();

            output.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"pgbench ran {transactions:N0} transactions ({transactions / options.Duration.TotalSeconds:N0}/s); the pipeline committed {final.ChangesCommitted:N0} changes "
                + $"of {final.Transactions:N0} transactions as {final.ChangelogRows:N0} changelog rows in {final.Batches:N0} batches, "
                + $"caught up with WAL position {workloadEnd} {caughtUpIn.TotalSeconds:F1} s after the workload, and stopped"));

            var report = await ChangelogVerifier.VerifyAsync(database, DemoDatabase.SlotName, workloadEnd, ct).ConfigureAwait(false);
            report.Write(output);
            return report.Passed ? ExitCodes.Ok : ExitCodes.VerificationFailed;
        }
        finally
        {
            // Whatever happened, the pipeline is stopped before its server goes away.
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await running.ConfigureAwait(false);
            }
            catch (Exception e) when (e is WalPipelineException or WalPipelineConfigurationException or OperationCanceledException)
            {
                // Reported by the caller when it was the reason to stop.
            }
        }
    }

    /// <summary>The exit code of an error the demo reports in one line; null for a bug, which gets its stack trace.</summary>
    private static int? ExitCodeFor(Exception error) => error switch
    {
        DemoException demo => demo.ExitCode,
        WalPipelineConfigurationException => ExitCodes.Configuration,
        WalPipelineException => ExitCodes.Replication,
        CatchUpTimeoutException => ExitCodes.VerificationFailed,
        LocalPostgresException => ExitCodes.Configuration,
        _ => null,
    };

    private static string ClientProgramOrName(LocalPostgresServer server, string name)
    {
        try
        {
            return server.ClientProgram(name);
        }
        catch (LocalPostgresException)
        {
            return name;
        }
    }

    /// <summary>Waits until the pipeline streams (start-up checks passed, sidecar tables created).</summary>
    private static async Task WaitUntilRunningAsync(WalPipeline pipeline, Task running, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp();
        while (pipeline.GetStatus().State != WalPipelineState.Running)
        {
            await ThrowIfStoppedAsync(running).ConfigureAwait(false);
            if (Stopwatch.GetElapsedTime(deadline) > s_startTimeout)
                throw new DemoException($"the pipeline did not start streaming within {s_startTimeout.TotalSeconds:F0} s (state {pipeline.GetStatus().State}).") { ExitCode = ExitCodes.Replication };
            await Task.Delay(TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits until the pipeline's committed position reaches <paramref name="target"/>: every source transaction
    /// that ended before it is in the changelog.
    /// </summary>
    /// <exception cref="CatchUpTimeoutException">Not within <paramref name="timeout"/>.</exception>
    internal static async Task WaitForCatchUpAsync(
        WalPipeline pipeline, Task running, Lsn target, TimeSpan timeout, CancellationToken ct, Action<WalPipelineStatus>? report = null)
    {
        var started = Stopwatch.GetTimestamp();
        var lastReport = started;
        while (true)
        {
            var status = pipeline.GetStatus();
            if (status.CommittedLsn >= target)
                return;
            await ThrowIfStoppedAsync(running).ConfigureAwait(false);
            if (Stopwatch.GetElapsedTime(started) > timeout)
            {
                throw new CatchUpTimeoutException(string.Create(
                    CultureInfo.InvariantCulture,
                    $"the pipeline did not catch up within {timeout.TotalSeconds:F0} s after the workload: it committed up to {status.CommittedLsn}, "
                    + $"the workload ended at {target} ({target - status.CommittedLsn:N0} bytes of WAL behind); the changelog was not verified."));
            }

            if (report is not null && Stopwatch.GetElapsedTime(lastReport) >= s_tick)
            {
                report(status);
                lastReport = Stopwatch.GetTimestamp();
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
        }
    }

    /// <summary>The end of the WAL inserted so far (with asynchronous commit, the flushed position may still be before the last commit).</summary>
    internal static async Task<Lsn> CurrentWalInsertPositionAsync(NpgsqlDataSource database, CancellationToken ct)
    {
        await using var command = database.CreateCommand("SELECT pg_current_wal_insert_lsn()");
        return (NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    /// <summary>Rethrows the pipeline's error when it stopped before it was asked to.</summary>
    private static async Task ThrowIfStoppedAsync(Task running)
    {
        if (!running.IsCompleted)
            return;
        await running.ConfigureAwait(false);
        throw new WalPipelineException("The pipeline stopped on its own before the demo asked it to.");
    }

    private static ILoggerFactory CreateLoggerFactory(bool verbose) => LoggerFactory.Create(builder =>
    {
        builder
            .SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning)
            // Npgsql logs every command at information level: thousands of lines a second under the workload.
            .AddFilter("Npgsql", LogLevel.Warning)
            .AddConsole(console =>
            {
                console.FormatterName = DemoLogFormatter.FormatterName;
                console.LogToStandardErrorThreshold = LogLevel.Trace;
            });

        // Registered directly: AddConsoleFormatter binds formatter options from configuration, which trimming cannot see.
        builder.Services.AddSingleton<ConsoleFormatter, DemoLogFormatter>();
    });
}
