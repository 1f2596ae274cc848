namespace Synchro.Pipeline.Protocol;

/// <summary>The first byte of each pgoutput message.</summary>
internal static class PgOutputMessageKinds
{
    public const byte Begin = (byte)'B';
    public const byte Commit = (byte)'C';
    public const byte Origin = (byte)'O';
    public const byte Relation = (byte)'R';
    public const byte Type = (byte)'Y';
    public const byte Insert = (byte)'I';
    public const byte Update = (byte)'U';
    public const byte Delete = (byte)'D';
    public const byte Truncate = (byte)'T';
    public const byte Message = (byte)'M';
    public const byte StreamStart = (byte)'S';
    public const byte StreamStop = (byte)'E';
    public const byte StreamCommit = (byte)'c';
    public const byte StreamAbort = (byte)'A';
    public const byte BeginPrepare = (byte)'b';
    public const byte Prepare = (byte)'P';
    public const byte CommitPrepared = (byte)'K';
    public const byte RollbackPrepared = (byte)'r';
    public const byte StreamPrepare = (byte)'p';

    public static string Name(byte kind) => kind switch
    {
        Begin => "Begin",
        Commit => "Commit",
        Origin => "Origin",
        Relation => "Relation",
        Type => "Type",
        Insert => "Insert",
        Update => "Update",
        Delete => "Delete",
        Truncate => "Truncate",
        Message => "Message",
        StreamStart => "Stream Start",
        StreamStop => "Stream Stop",
        StreamCommit => "Stream Commit",
        StreamAbort => "Stream Abort",
        BeginPrepare => "Begin Prepare",
        Prepare => "Prepare",
        CommitPrepared => "Commit Prepared",
        RollbackPrepared => "Rollback Prepared",
        StreamPrepare => "Stream Prepare",
        0 => "empty",
        _ => "unknown",
    };
}
