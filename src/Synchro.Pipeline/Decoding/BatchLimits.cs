namespace Synchro.Pipeline.Decoding;

/// <summary>When the decoder cuts a batch.</summary>
internal readonly record struct BatchLimits(int MaxRows, long MaxBytes);
