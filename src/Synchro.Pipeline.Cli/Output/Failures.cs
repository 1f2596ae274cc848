using Npgsql;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Database;

namespace Synchro.Pipeline.Cli.Output;

/// <summary>Turns what stopped a command into a message on standard error and the exit code that classifies it.</summary>
internal static class Failures
{
    /// <summary>Prints <paramref name="error"/> for <paramref name="command"/> and returns its exit code.</summary>
    /// <param name="command">The command's name, the prefix of the message.</param>
    /// <param name="error">What stopped it.</param>
    /// <param name="cancellation">The command's token: an <see cref="OperationCanceledException"/> it caused is an interruption, not a failure.</param>
    public static int Report(string command, Exception error, CancellationToken cancellation)
    {
        var (exitCode, message) = Classify(error, cancellation);
        var output = Terminal.Error;
        var label = output.Paint(exitCode == ExitCodes.Interrupted ? "interrupted" : "error", exitCode == ExitCodes.Interrupted ? Tone.Warning : Tone.Bad);
        var lines = message.Split('\n');
        output.WriteWrapped($"synchro-pipeline {command}: {label}: ", lines[0].TrimEnd('\r'), indent: 4);
        foreach (var line in lines.Skip(1))
            output.WriteWrapped("", line.TrimEnd('\r'), indent: 5);
        return exitCode;
    }

    private static (int ExitCode, string Message) Classify(Exception error, CancellationToken cancellation) => error switch
    {
        OperationCanceledException when cancellation.IsCancellationRequested => (ExitCodes.Interrupted, "stopped before it finished"),
        SettingsException => (ExitCodes.Configuration, error.Message),
        WalPipelineConfigurationException => (ExitCodes.Configuration, error.Message),
        // The pipeline waits for an unreachable server, at start too; a one-shot command (check, migrate, status) does not.
        WalPipelineException when DatabaseFailures.IsUnreachable(error.InnerException) => (ExitCodes.Unavailable, Unreachable(error)),
        WalPipelineException when DatabaseFailures.Refusal(error.InnerException) is { } refusal => (ExitCodes.Configuration, RefusalMessage(refusal)),
        WalPipelineException => (ExitCodes.Replication, error.Message),
        _ when DatabaseFailures.IsUnreachable(error) => (ExitCodes.Unavailable, Unreachable(error)),
        _ when DatabaseFailures.Refusal(error) is { } refusal => (ExitCodes.Configuration, RefusalMessage(refusal)),
        _ => (ExitCodes.Unexpected, $"unexpected failure (please report it): {error}"),
    };

    private static string RefusalMessage(PostgresException refusal) =>
        $"the server refused: {refusal.MessageText} (SQLSTATE {refusal.SqlState}); check the user, password and database in the connection string, or grant what is missing";

    /// <summary>The innermost Npgsql error, which names the host, and its cause, which says why (refused, timed out).</summary>
    private static string Unreachable(Exception error)
    {
        var npgsql = error;
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is NpgsqlException)
                npgsql = e;
        }
        var cause = npgsql.InnerException is { } inner ? $" ({inner.Message})" : "";
        return $"the database cannot be reached: {npgsql.Message}{cause}";
    }
}
