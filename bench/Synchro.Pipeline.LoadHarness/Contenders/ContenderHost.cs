using System.Text.Json;
using Synchro.Pipeline.LoadHarness.Reporting;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>
/// The child-process side: <c>contender &lt;spec json&gt;</c> runs one contender and prints one
/// <see cref="ResultPrefix"/> line with its <see cref="ContenderResult"/> as JSON.
/// </summary>
internal static class ContenderHost
{
    public const string Verb = "contender";
    public const string ResultPrefix = "RESULT ";

    public static async Task<int> RunAsync(string[] args)
    {
        var spec = args.Length == 2 ? JsonSerializer.Deserialize<ContenderSpec>(args[1], HarnessJson.Options) : null;
        if (spec is null)
        {
            await Console.Error.WriteLineAsync("usage: contender <spec json>");
            return 2;
        }
        ContenderResult result;
        try
        {
            result = spec.Name switch
            {
                ContenderNames.Npgsql => await NpgsqlPgOutputContender.RunAsync(spec, CancellationToken.None),
                ContenderNames.OursReadOnly => await PipelineContender.RunAsync(spec, discardWrites: true, CancellationToken.None),
                ContenderNames.OursEndToEnd => await PipelineContender.RunAsync(spec, discardWrites: false, CancellationToken.None),
                ContenderNames.GoPerChange => await GoPerChangeContender.RunAsync(spec, CancellationToken.None),
                ContenderNames.BinaryCopy => await BinaryCopyBaseline.RunAsync(spec, CancellationToken.None),
                _ => throw new ArgumentException($"unknown contender '{spec.Name}'"),
            };
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync(e.ToString());
            result = new ContenderResult { Name = spec.Name, Error = $"{e.GetType().Name}: {e.Message}" };
        }
        Console.WriteLine(ResultPrefix + JsonSerializer.Serialize(result, HarnessJson.Options));
        return result.Succeeded ? 0 : 1;
    }
}
