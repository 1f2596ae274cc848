namespace Synchro.Pipeline.Protocol;

/// <summary>Whether the server streams large in-progress transactions (the <c>streaming</c> option).</summary>
internal enum PgOutputStreaming : byte
{
    Off,
    On,

    /// <summary>Protocol 4 (PostgreSQL 16+): stream aborts also carry the abort LSN and time.</summary>
    Parallel,
}

/// <summary>
/// The pgoutput options a stream was started with. They decide which message kinds may appear and
/// which optional fields a message carries, so the parser must be given the same ones as the server.
/// </summary>
internal readonly record struct PgOutputOptions
{
    public const int MinProtocolVersion = 1;
    public const int MaxProtocolVersion = 4;

    public PgOutputOptions(int protocolVersion, PgOutputStreaming streaming = PgOutputStreaming.Off, bool twoPhase = false, bool binary = false, bool messages = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(protocolVersion, MinProtocolVersion);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(protocolVersion, MaxProtocolVersion);
        if (streaming != PgOutputStreaming.Off && protocolVersion < 2)
            throw new ArgumentException("Streaming of in-progress transactions needs pgoutput protocol version 2 or later.", nameof(streaming));
        if (streaming == PgOutputStreaming.Parallel && protocolVersion < 4)
            throw new ArgumentException("Parallel streaming needs pgoutput protocol version 4 (PostgreSQL 16) or later.", nameof(streaming));
        if (twoPhase && protocolVersion < 3)
            throw new ArgumentException("Two-phase decoding needs pgoutput protocol version 3 or later.", nameof(twoPhase));
        ProtocolVersion = protocolVersion;
        Streaming = streaming;
        TwoPhase = twoPhase;
        Binary = binary;
        Messages = messages;
    }

    public int ProtocolVersion { get; }

    public PgOutputStreaming Streaming { get; }

    public bool TwoPhase { get; }

    /// <summary>Column values may arrive in binary send format (<c>'b'</c>).</summary>
    public bool Binary { get; }

    /// <summary>Logical decoding messages (<c>pg_logical_emit_message</c>) are sent.</summary>
    public bool Messages { get; }

    /// <summary>Stream Abort carries the abort LSN and timestamp.</summary>
    public bool StreamAbortHasAbortInfo => ProtocolVersion >= 4 && Streaming == PgOutputStreaming.Parallel;
}
