namespace Synchro.Pipeline.LoadHarness.Backlog;

/// <summary>
/// The backlog every contender drains: identical WAL between <c>StartLsn</c> and <c>EndLsn</c>
/// (<c>pg_current_wal_lsn()</c> before and after pgbench). <c>Changes</c> and <c>PgoutputBytes</c> were
/// counted by decoding that WAL on the server (payload bytes, without the replication protocol's framing);
/// <c>LastCommitEndLsn</c> ends the backlog's last transaction: a consumer that committed it has drained the backlog.
/// </summary>
internal sealed record BacklogInfo(
    long Transactions,
    long Changes,
    string StartLsn,
    string EndLsn,
    string LastCommitEndLsn,
    long WalBytes,
    long PgoutputBytes,
    double GenerationSeconds,
    double PgbenchTps);
