using System.Globalization;

namespace Synchro.Pipeline.Protocol;

/// <summary>
/// The replication stream holds bytes that are not a valid pgoutput message: truncated, with wrong
/// lengths or counts, of an unknown kind, or referring to a relation the stream never described.
/// </summary>
/// <remarks>
/// A desynchronised stream cannot be resumed past the bad message, so this is fatal to the pipeline:
/// nothing after <see cref="Lsn"/> is decoded or confirmed, and a restart re-reads the same WAL.
/// </remarks>
public sealed class PgOutputProtocolException : Exception
{
    /// <summary>Creates the exception for a message of kind <paramref name="messageKind"/> that failed at <paramref name="offset"/>.</summary>
    public PgOutputProtocolException(string reason, byte messageKind, int offset, Lsn lsn = default)
        : base(Describe(reason, messageKind, offset, lsn))
    {
        Reason = reason;
        MessageKind = messageKind;
        Offset = offset;
        Lsn = lsn;
    }

    /// <summary>What was wrong, without the position.</summary>
    public string Reason { get; }

    /// <summary>The message's kind byte (<c>'I'</c> for Insert, ...), or 0 when the message was empty.</summary>
    public byte MessageKind { get; }

    /// <summary>The byte offset inside the message where decoding failed.</summary>
    public int Offset { get; }

    /// <summary>The WAL position of the message, or <see cref="Lsn.Invalid"/> when the caller did not know it.</summary>
    public Lsn Lsn { get; }

    /// <summary>The message kind's protocol name ("Insert", "Commit", ...).</summary>
    public string MessageName => PgOutputMessageKinds.Name(MessageKind);

    private static string Describe(string reason, byte kind, int offset, Lsn lsn)
    {
        var where = lsn.IsValid ? $" at LSN {lsn}" : "";
        var kindText = kind is >= 0x20 and < 0x7F ? $"'{(char)kind}' ({PgOutputMessageKinds.Name(kind)})" : $"0x{kind:X2} ({PgOutputMessageKinds.Name(kind)})";
        return string.Create(CultureInfo.InvariantCulture,
            $"Malformed pgoutput message{where}: {kindText} message, byte offset {offset}: {reason}. The replication stream cannot be decoded past this point; nothing after it was applied.");
    }
}
