namespace Synchro.Pipeline.Cli;

/// <summary>The process exit codes every command uses (documented in README).</summary>
internal static class ExitCodes
{
    /// <summary>Finished, or stopped cleanly on Ctrl+C / SIGTERM.</summary>
    public const int Ok = 0;

    /// <summary>An unexpected error (a bug); the message and stack trace are printed.</summary>
    public const int Unexpected = 1;

    /// <summary>The command line could not be parsed.</summary>
    public const int Usage = 2;

    /// <summary>A setting is missing or invalid, or the database is not set up for the pipeline; the message names the setting or the SQL that fixes it.</summary>
    public const int Configuration = 3;

    /// <summary>The pipeline stopped on a fatal replication error (dropped or invalidated slot, undecodable stream, failed write).</summary>
    public const int Replication = 4;

    /// <summary>The database could not be reached.</summary>
    public const int Unavailable = 5;

    /// <summary><c>demo</c>: the changelog did not match the source.</summary>
    public const int VerificationFailed = 6;
}
