using System.CommandLine;

namespace Synchro.Pipeline.Cli;

/// <summary><c>synchro-pipeline check</c> (being built).</summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var command = new Command("check", "Not built yet.");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("check: not built yet");
            return ExitCodes.Unexpected;
        });
        return command;
    }
}
