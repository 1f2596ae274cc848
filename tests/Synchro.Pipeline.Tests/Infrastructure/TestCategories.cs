namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// Trait values for <c>[Trait(TestCategories.Name, ...)]</c>, selected with <c>dotnet test --filter Category=...</c>.
/// </summary>
public static class TestCategories
{
    public const string Name = "Category";

    /// <summary>
    /// Behaviour that depends on the server's major version: the replication protocol, slots, status and checks, kill and
    /// exactness, the snapshot. <c>.ci/test</c> runs these on the majors it has no time to run the whole suite on.
    /// </summary>
    public const string VersionSensitive = "VersionSensitive";
}
