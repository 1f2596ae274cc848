namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL 17 or newer server for the tests of the <c>postgres17</c> collection, for what older servers
/// lack (pgoutput's <c>origin</c> option, 16+): the matrix's version (<c>SYNCHRO_PG_VERSION</c>) when it is 17 or newer,
/// else 17, found or fetched like any major; when none can be had, every test of the collection fails with a message
/// that says how to provide one.
/// </summary>
public sealed class Postgres17ServerFixture : PostgresServerFixture
{
    public const int MinimumVersion = 17;

    /// <summary>The matrix's major when it is 17 or newer, else 17: for tests that start their own 17+ servers.</summary>
    public static int VersionOf17OrNewer => MatrixVersion is { } matrix && matrix >= MinimumVersion ? matrix : MinimumVersion;

    protected override int? Version => VersionOf17OrNewer;
}

[CollectionDefinition(Name)]
public sealed class Postgres17Collection : ICollectionFixture<Postgres17ServerFixture>
{
    public const string Name = "postgres17";
}
