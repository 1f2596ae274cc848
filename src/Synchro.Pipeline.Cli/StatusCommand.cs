using System.CommandLine;

namespace Synchro.Pipeline.Cli;

/// <summary><c>synchro-pipeline status</c> (being built).</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var command = new Command("status", "Not built yet.");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("status: not built yet");
            return ExitCodes.Unexpected;
        });
        return command;
    }
}
