using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Items;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>Takes a <see cref="ChangeDecoder"/>'s items in tests that feed it frames directly.</summary>
internal static class DecoderItems
{
    /// <summary>Cuts the decoder's batch at idle and returns it; fails unless exactly one batch comes out.</summary>
    public static ChangeBatch CutIdleBatch(ChangeDecoder decoder)
    {
        decoder.CutAtIdle();
        var items = TakeAll(decoder);
        if (items is [DecoderFailure failure])
            Assert.Fail(failure.Error.Message);
        var batch = Assert.IsType<ChangeBatch>(Assert.Single(items));
        return batch;
    }

    /// <summary>Every item ready now, in order.</summary>
    public static List<DecodedItem> TakeAll(ChangeDecoder decoder)
    {
        var items = new List<DecodedItem>();
        while (decoder.TryTakeReady(out var item))
            items.Add(item);
        return items;
    }
}
