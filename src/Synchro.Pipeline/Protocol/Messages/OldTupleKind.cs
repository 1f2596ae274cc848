namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Which old row an Update or Delete carries.</summary>
internal enum OldTupleKind : byte
{
    /// <summary>No old row (an Update that did not change the replica identity).</summary>
    None = 0,

    /// <summary>The replica identity columns only (<c>K</c>); other columns are null.</summary>
    Key = (byte)'K',

    /// <summary>The whole old row (<c>O</c>, REPLICA IDENTITY FULL).</summary>
    Full = (byte)'O',
}
