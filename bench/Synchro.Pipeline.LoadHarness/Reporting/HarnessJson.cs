using System.Text.Json;
using System.Text.Json.Serialization;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>The one JSON shape of the harness: camelCase, nulls left out; used by the report and the child processes' result lines.</summary>
internal static class HarnessJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static JsonSerializerOptions Indented { get; } = new(Options) { WriteIndented = true };
}
