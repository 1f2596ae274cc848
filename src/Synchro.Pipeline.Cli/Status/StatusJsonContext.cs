using System.Text.Json.Serialization;

namespace Synchro.Pipeline.Cli.Status;

/// <summary>Source-generated (AOT-safe) JSON for <c>status --json</c>; keys in snake_case, like the server's own views.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(StatusReport))]
internal sealed partial class StatusJsonContext : JsonSerializerContext;
