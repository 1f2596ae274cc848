using System.Threading.Channels;

namespace Synchro.Pipeline.Pipeline;

/// <summary>The options of every channel between stages, in one place.</summary>
internal static class StageChannels
{
    /// <summary>Decoder → writer. Bounded and waiting, so a slow writer pauses the decoder and, through the pipe, the socket.</summary>
    public static BoundedChannelOptions Batches(int capacity) => new(capacity)
    {
        SingleReader = true,
        SingleWriter = true,
        FullMode = BoundedChannelFullMode.Wait,
        // Continuations run on the thread pool, never inline on a stage's own loop.
        AllowSynchronousContinuations = false,
    };

    /// <summary>Writer → committer: the end LSN of each committed batch.</summary>
    public static BoundedChannelOptions Receipts(int capacity) => new(capacity)
    {
        SingleReader = true,
        SingleWriter = true,
        FullMode = BoundedChannelFullMode.Wait,
        AllowSynchronousContinuations = false,
    };
}
