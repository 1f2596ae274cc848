namespace Synchro.Pipeline.Cli;

/// <summary>The process exit codes every command uses (documented in docs/operations.md).</summary>
internal static class ExitCodes
{
    /// <summary>Finished, or stopped cleanly on Ctrl+C / SIGTERM (<c>run</c>); <c>status</c>: the slot exists and is usable.</summary>
    public const int Ok = 0;

    /// <summary>An unexpected error (a bug); the message and stack trace are printed.</summary>
    public const int Unexpected = 1;

    /// <summary>The command line could not be parsed.</summary>
    public const int Usage = 2;

    /// <summary>
    /// A setting is missing or invalid (configuration file, environment, flags), the database is not set up for the
    /// pipeline, or the server refused the login or a privilege; the message names the setting or the SQL that fixes it.
    /// <c>demo</c>: this machine cannot run the throwaway server (no PostgreSQL binaries, no npm to fetch them, an
    /// unwritable cache, a failed initdb or start); the message says what to install or set.
    /// </summary>
    public const int Configuration = 3;

    /// <summary>
    /// The pipeline stopped on a fatal replication error (dropped or invalidated slot, undecodable stream, failed write);
    /// <c>status</c>: the slot was invalidated (<c>wal_status = lost</c>, or an <c>invalidation_reason</c> on 17+).
    /// </summary>
    public const int Replication = 4;

    /// <summary>The database could not be reached (refused, timed out, shutting down, too many connections).</summary>
    public const int Unavailable = 5;

    /// <summary><c>demo</c>: the changelog did not match the source.</summary>
    public const int VerificationFailed = 6;

    /// <summary><c>status</c>: the replication slot does not exist (nothing consumes, nothing retains WAL for the pipeline).</summary>
    public const int SlotMissing = 7;

    /// <summary><c>replay-failures</c>: some recorded rule failures failed again and stay in <c>sync_rule_failures</c>.</summary>
    public const int RuleFailuresRemain = 8;

    /// <summary>A one-shot command (<c>migrate</c>, <c>check</c>, <c>status</c>) was interrupted by Ctrl+C / SIGTERM (the shell's 128 + SIGINT).</summary>
    public const int Interrupted = 130;

    /// <summary>
    /// The codes after which a new start fails the same way until the operator changes something: the command line
    /// (<see cref="Usage"/>); a setting, the database's set-up, a privilege or a refused position (<see cref="Configuration"/>);
    /// the slot or the stream (<see cref="Replication"/>: a start after a dropped slot would create a new one and leave a
    /// gap in the changelog unnoticed). A service manager must not restart the pipeline on them: the systemd unit in
    /// docs/deploy lists exactly these in <c>RestartPreventExitStatus</c> (docs/deployment.md#systemd).
    /// </summary>
    public static IReadOnlyList<int> NoRestart { get; } = [Usage, Configuration, Replication];
}
