using System.IO.Pipelines;
using System.Threading.Channels;

namespace Synchro.Pipeline.Runtime;

/// <summary>The options of every channel between stages, in one place.</summary>
internal static class StageChannels
{
    /// <summary>
    /// Whether the runtime runs socket completions on its socket (epoll) thread instead of queueing them to the
    /// pool (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, read once by the runtime at start).
    /// </summary>
    public static bool InlineSocketCompletions { get; } = Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1";

    /// <summary>
    /// Reader → decoder: the WAL pipe. Pausing at <paramref name="bufferBytes"/> is the memory budget and the
    /// backpressure to the socket.
    /// </summary>
    /// <remarks>
    /// With inline socket completions on, the decoder also runs inline: a flush runs the waiting decoder on the
    /// reader's thread, so a message goes from the socket to a batch without a thread-pool hand-off. Measured on
    /// a 300,000-change backlog (2 cores): 2.8 s of client CPU instead of 5.2 s, and the drain keeps pace with
    /// pg_recvlogical. Without inline socket completions an inline pipe only moves the hand-off and costs more,
    /// so it stays on the pool.
    /// </remarks>
    public static PipeOptions Wal(long bufferBytes)
    {
        var inline = InlineSocketCompletions;
        return new PipeOptions(
            readerScheduler: inline ? PipeScheduler.Inline : PipeScheduler.ThreadPool,
            writerScheduler: inline ? PipeScheduler.Inline : PipeScheduler.ThreadPool,
            pauseWriterThreshold: bufferBytes,
            resumeWriterThreshold: bufferBytes / 2,
            useSynchronizationContext: false);
    }

    /// <summary>Decoder → writer. Bounded and waiting, so a slow writer pauses the decoder and, through the pipe, the socket.</summary>
    public static BoundedChannelOptions Items(int capacity) => new(capacity)
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
