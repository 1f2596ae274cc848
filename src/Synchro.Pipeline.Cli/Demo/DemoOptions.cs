namespace Synchro.Pipeline.Cli.Demo;

/// <summary>The <c>demo</c> command's settings.</summary>
/// <param name="Duration">How long pgbench runs.</param>
/// <param name="Clients">pgbench clients (concurrent connections).</param>
/// <param name="Rate">pgbench's total rate limit in transactions per second; 0 for none.</param>
/// <param name="Keep">Leave the server running after a finished demo.</param>
/// <param name="PgVersion">The PostgreSQL major to run; <see langword="null"/> for <c>SYNCHRO_PG_VERSION</c>, else the newest installed.</param>
/// <param name="Verbose">Log at information level instead of warnings only.</param>
internal sealed record DemoOptions(TimeSpan Duration, int Clients, int Rate, bool Keep, int? PgVersion, bool Verbose);
