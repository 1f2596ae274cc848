namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>What a contender child process is told to do (passed as one JSON argument; connection strings carry no password).</summary>
internal sealed record ContenderSpec
{
    public required string Name { get; init; }
    public required string SourceConnectionString { get; init; }
    public string? ChangelogConnectionString { get; init; }
    public string? CopyTargetConnectionString { get; init; }
    public required string SlotName { get; init; }
    public required string PublicationName { get; init; }

    /// <summary>The end of the backlog's last transaction (text form of an LSN).</summary>
    public required string StopLsn { get; init; }

    /// <summary>Stop after this many changes instead (the Go design's slice); 0 for the whole backlog.</summary>
    public long MaxChanges { get; init; }

    /// <summary>Our pipeline runs in binary tuple mode.</summary>
    public bool BinaryTuples { get; init; }

    /// <summary>Our pipeline asks the server (16+) to leave out origin-tagged transactions (<c>FilterOriginsOnServer</c>).</summary>
    public bool FilterOriginsOnServer { get; init; }

    /// <summary>A listener records every span of our pipeline (all data), for the cost of tracing.</summary>
    public bool Traced { get; init; }

    /// <summary>Our pipeline asks for pgoutput protocol 4 with <c>streaming 'parallel'</c> (16+) instead of protocol 2.</summary>
    public bool ParallelStreaming { get; init; }
}
