namespace Synchro.Pipeline.Decoding.Items;

/// <summary>
/// The decoder cannot go on. It comes after the whole transactions decoded before the failure, so the writer commits
/// those first and then stops with <see cref="Error"/>; a restart resumes right before the failing transaction.
/// </summary>
internal sealed class DecoderFailure(WalPipelineException error) : DecodedItem
{
    public WalPipelineException Error { get; } = error;
}
