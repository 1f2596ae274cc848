using System.Text.Json.Serialization;

namespace Synchro.Pipeline.Pipeline;

/// <summary>Source-generated JSON for rule failure payloads (trim- and AOT-safe).</summary>
[JsonSerializable(typeof(Dictionary<string, string?>))]
internal sealed partial class PayloadJsonContext : JsonSerializerContext;
