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

    protected override int? Version => MatrixVersion is { } matrix && matrix >= MinimumVersion ? matrix : MinimumVersion;
}

[CollectionDefinition(Name)]
public sealed class Postgres17Collection : ICollectionFixture<Postgres17ServerFixture>
{
    public const string Name = "postgres17";
}
