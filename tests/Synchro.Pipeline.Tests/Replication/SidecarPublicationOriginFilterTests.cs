using Synchro.Pipeline.Tests.Infrastructure;
using static Synchro.Pipeline.Tests.Replication.SidecarPublicationTests;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// PostgreSQL 16+ can leave the pipeline's origin-tagged writes out before decoding them (<c>FilterOriginsOnServer</c>):
/// then a publication covering the sidecar tables costs nothing and is not warned about; otherwise the warning offers it.
/// </summary>
[Collection(Postgres17Collection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class SidecarPublicationOriginFilterTests(Postgres17ServerFixture postgres)
{
    [Fact]
    public async Task The_warning_offers_the_origin_filter_and_is_not_given_once_it_is_on()
    {
        var database = await DatabaseAsync(postgres, $"CREATE PUBLICATION {Publication} FOR ALL TABLES");
        var filtered = Options(database);
        filtered.FilterOriginsOnServer = true;
        var untagged = Options(database);
        untagged.FilterOriginsOnServer = true;
        untagged.TagOwnWrites = false;

        var unfiltered = await WalPipeline.CheckAsync(Options(database));
        var withFilter = await WalPipeline.CheckAsync(filtered);
        var withoutTags = await WalPipeline.CheckAsync(untagged);

        var offered = Assert.Single(unfiltered, w => w.Contains(Covers, StringComparison.Ordinal));
        Assert.StartsWith($"Publication \"{Publication}\" covers the sidecar tables {AllSidecarTables} (it is FOR ALL TABLES", offered, StringComparison.Ordinal);
        Assert.EndsWith(ElsewhereOrFilter, offered, StringComparison.Ordinal);
        Assert.DoesNotContain(withFilter, w => w.Contains(Covers, StringComparison.Ordinal));
        // Untagged writes are not the origin filter's to leave out.
        Assert.EndsWith(ElsewhereOnly, Assert.Single(withoutTags, w => w.Contains(Covers, StringComparison.Ordinal)), StringComparison.Ordinal);
    }
}
