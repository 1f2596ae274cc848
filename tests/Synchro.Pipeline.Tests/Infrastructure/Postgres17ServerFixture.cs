namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL 17 server for the tests of the <c>postgres17</c> collection, for what older servers lack
/// (pgoutput's <c>origin</c> option, 16+). Its binaries come from <see cref="Postgres17Binaries"/>; when none can be
/// found or fetched, every test of the collection fails with a message that says how to provide them.
/// </summary>
public sealed class Postgres17ServerFixture : PostgresServerFixture
{
    protected override async Task<string?> BinDirectoryAsync() => await Postgres17Binaries.ResolveAsync();
}

[CollectionDefinition(Name)]
public sealed class Postgres17Collection : ICollectionFixture<Postgres17ServerFixture>
{
    public const string Name = "postgres17";
}
