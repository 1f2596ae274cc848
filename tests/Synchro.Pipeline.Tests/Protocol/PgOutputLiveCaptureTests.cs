using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// Captures every golden scenario from the server on this machine and checks it decodes exactly
/// like the checked-in fixture (up to LSNs, xids, OIDs and times), or like its <c>NAME.pgN.txt</c> where major N sends
/// it differently. Set SYNCHRO_UPDATE_FIXTURES=1 to rewrite the fixtures from the live capture instead (on 15; on
/// another major, only its <c>.pgN.txt</c> files).
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class PgOutputLiveCaptureTests(PostgresServerFixture postgres)
{
    private static readonly bool s_update = Environment.GetEnvironmentVariable("SYNCHRO_UPDATE_FIXTURES") == "1";

    public static TheoryData<string> Scenarios => [.. GoldenScenarios.All.Select(s => s.Name)];

    [Theory]
    [MemberData(nameof(Scenarios))]
    public async Task Live_capture_decodes_like_the_checked_in_fixture(string name)
    {
        var scenario = GoldenScenarios.All.Single(s => s.Name == name);
        var stream = await GoldenCapture.CaptureAsync(postgres, scenario);
        var dump = MessageDump.Render(stream, scenario.Options);

        var major = postgres.Server.ServerVersion;
        if (s_update)
        {
            var folder = GoldenFixture.SourceDirectory();
            Directory.CreateDirectory(folder);
            if (major == GoldenFixture.CapturedOnVersion)
            {
                await File.WriteAllBytesAsync(Path.Combine(folder, name + ".bin"), stream);
                await File.WriteAllTextAsync(Path.Combine(folder, name + ".txt"), dump);
            }
            else if (GoldenFixture.Normalize(dump) != GoldenFixture.Normalize(GoldenFixture.Load(name).ExpectedDump))
            {
                await File.WriteAllTextAsync(GoldenFixture.VersionDumpFile(folder, name, major), dump);
            }
            else
            {
                File.Delete(GoldenFixture.VersionDumpFile(folder, name, major));
            }
            return;
        }

        Assert.Equal(GoldenFixture.Normalize(GoldenFixture.ExpectedLiveDump(name, major)), GoldenFixture.Normalize(dump));
    }

    [Fact]
    public async Task Live_capture_of_the_benchmark_stream_matches_the_checked_in_one()
    {
        var stream = await GoldenCapture.CaptureAsync(postgres, GoldenScenarios.BenchRows);
        var dump = MessageDump.Render(stream, GoldenScenarios.BenchRows.Options);

        if (s_update && postgres.Server.ServerVersion == GoldenFixture.CapturedOnVersion)
        {
            var path = Path.Combine(GoldenFixture.SourceDirectory(), "..", BenchStream.FileName);
            await File.WriteAllBytesAsync(path, stream);
            return;
        }

        var expected = MessageDump.Render(BenchStream.Load(), GoldenScenarios.BenchRows.Options);
        Assert.Equal(GoldenFixture.Normalize(expected), GoldenFixture.Normalize(dump));
        Assert.Equal(1000, dump.Split('\n').Count(l => l.StartsWith("Insert ", StringComparison.Ordinal)));
        Assert.Equal(1000, dump.Split('\n').Count(l => l.StartsWith("Update ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Live_capture_of_the_binary_benchmark_stream_matches_the_checked_in_one()
    {
        var scenario = GoldenScenarios.BenchRowsBinary;
        var stream = await GoldenCapture.CaptureAsync(postgres, scenario);
        var dump = MessageDump.Render(stream, scenario.Options);

        if (s_update && postgres.Server.ServerVersion == GoldenFixture.CapturedOnVersion)
        {
            var path = Path.Combine(GoldenFixture.SourceDirectory(), "..", BenchStream.BinaryFileName);
            await File.WriteAllBytesAsync(path, stream);
            return;
        }

        var expected = MessageDump.Render(BenchStream.LoadBinary(), scenario.Options);
        Assert.Equal(GoldenFixture.Normalize(expected), GoldenFixture.Normalize(dump));
        Assert.Equal(1000, dump.Split('\n').Count(l => l.StartsWith("Insert ", StringComparison.Ordinal) && l.Contains("new=[b:", StringComparison.Ordinal)));
        Assert.Equal(1000, dump.Split('\n').Count(l => l.StartsWith("Update ", StringComparison.Ordinal)));
    }
}
