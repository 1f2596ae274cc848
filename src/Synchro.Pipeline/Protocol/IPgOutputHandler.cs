using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Protocol;

/// <summary>
/// Receives each parsed pgoutput message. Implement it on a struct and the parser's calls are
/// devirtualised and inlined.
/// </summary>
/// <remarks>
/// Message views point into the parser's input: they are valid only during the call. Copy what
/// must outlive it. A handler may throw; the parser's state is then as after the message.
/// </remarks>
internal interface IPgOutputHandler
{
    void OnBegin(in BeginMessage message);

    void OnCommit(in CommitMessage message);

    void OnOrigin(in OriginMessage message);

    void OnRelation(in RelationMessage message);

    void OnType(in TypeMessage message);

    void OnInsert(in InsertMessage message);

    void OnUpdate(in UpdateMessage message);

    void OnDelete(in DeleteMessage message);

    void OnTruncate(in TruncateMessage message);

    void OnMessage(in LogicalDecodingMessage message);

    void OnStreamStart(in StreamStartMessage message);

    void OnStreamStop();

    void OnStreamCommit(in CommitMessage message);

    void OnStreamAbort(in StreamAbortMessage message);

    void OnBeginPrepare(in PrepareMessage message);

    void OnPrepare(in PrepareMessage message);

    void OnCommitPrepared(in CommitPreparedMessage message);

    void OnRollbackPrepared(in RollbackPreparedMessage message);

    void OnStreamPrepare(in PrepareMessage message);
}
