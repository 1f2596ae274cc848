using System.CommandLine;

namespace Synchro.Pipeline.Cli;

/// <summary><c>synchro-pipeline demo</c> (being built).</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Not built yet.");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("demo: not built yet");
            return ExitCodes.Unexpected;
        });
        return command;
    }
}
