using System.CommandLine;

namespace Synchro.Pipeline.Cli;

/// <summary><c>synchro-pipeline migrate</c> (being built).</summary>
internal static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Not built yet.");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("migrate: not built yet");
            return ExitCodes.Unexpected;
        });
        return command;
    }
}
