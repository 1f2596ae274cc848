using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// Captures every golden scenario from the server on this machine and checks it decodes exactly
/// like the checked-in fixture (up to LSNs, xids, OIDs and times). Set SYNCHRO_UPDATE_FIXTURES=1 to
/// rewrite the fixtures from the live capture instead.
/// </summary>
[Collection(PostgresCollection.Name)]
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

        if (s_update)
        {
            var folder = GoldenFixture.SourceDirectory();
            Directory.CreateDirectory(folder);
            await File.WriteAllBytesAsync(Path.Combine(folder, name + ".bin"), stream);
            await File.WriteAllTextAsync(Path.Combine(folder, name + ".txt"), dump);
            return;
        }

        var expected = GoldenFixture.Load(name);
        Assert.Equal(GoldenFixture.Normalize(expected.ExpectedDump), GoldenFixture.Normalize(dump));
    }

    [Fact]
    public async Task Live_capture_of_the_benchmark_stream_matches_the_checked_in_one()
    {
        var stream = await GoldenCapture.CaptureAsync(postgres, GoldenScenarios.BenchRows);
        var dump = MessageDump.Render(stream, GoldenScenarios.BenchRows.Options);

        if (s_update)
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

        if (s_update)
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
