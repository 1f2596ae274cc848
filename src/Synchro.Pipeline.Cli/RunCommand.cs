using System.CommandLine;

namespace Synchro.Pipeline.Cli;

/// <summary><c>synchro-pipeline run</c> (being built).</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var command = new Command("run", "Not built yet.");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("run: not built yet");
            return ExitCodes.Unexpected;
        });
        return command;
    }
}
