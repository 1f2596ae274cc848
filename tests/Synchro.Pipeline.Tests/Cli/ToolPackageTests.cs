using System.IO.Compression;
using System.Reflection;
using System.Xml.Linq;
using Synchro.Pipeline.Cli;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// The packages as a user takes them: both projects packed into a folder, the tool installed from that folder into a
/// fresh tool path, then <c>synchro-pipeline --version</c> and a short <c>demo</c> run from there.
/// </summary>
public sealed class ToolPackageTests : IDisposable
{
    private const string LibraryId = "Synchro.Pipeline";
    private const string ToolId = "Synchro.Pipeline.Cli";
    private const string Command = "synchro-pipeline";

    // Packing rebuilds only what changed since the test build; on a loaded 2-core machine a full rebuild takes a minute.
    private static readonly TimeSpan s_packTimeout = TimeSpan.FromMinutes(4);
    private static readonly TimeSpan s_installTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan s_demoTimeout = TimeSpan.FromMinutes(3);

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"synchro-pack-{Guid.NewGuid():N}");

    public ToolPackageTests() => Directory.CreateDirectory(_root);

    [Fact]
    public async Task The_packed_tool_installs_from_a_folder_and_runs_version_and_demo()
    {
        var feed = Directory.CreateDirectory(Path.Combine(_root, "feed")).FullName;
        var tools = Path.Combine(_root, "tools");
        var repository = RepositoryRoot();
        var configuration = typeof(ExitCodes).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;

        foreach (var project in new[] { "src/Synchro.Pipeline", "src/Synchro.Pipeline.Cli" })
        {
            var (packed, packOutput) = await DotnetAsync(
                ["pack", Path.Combine(repository, project), "-c", configuration, "-o", feed, "--disable-build-servers", "-nologo"], s_packTimeout);
            Assert.True(packed == 0, $"dotnet pack {project} exited with {packed}:\n{packOutput}");
        }

        var version = PackedVersion(feed, ToolId);
        Assert.Equal(version, PackedVersion(feed, LibraryId));
        AssertMetadata(Nuspec(feed, LibraryId, version), LibraryId, version);
        AssertMetadata(Nuspec(feed, ToolId, version), ToolId, version);
        using (var tool = ZipFile.OpenRead(Path.Combine(feed, $"{ToolId}.{version}.nupkg")))
        {
            // LocalPostgres is not a package of its own: the tool carries it, as it carries the library.
            var entries = tool.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
            Assert.Contains("tools/net10.0/any/DotnetToolSettings.xml", entries);
            Assert.Contains("tools/net10.0/any/Synchro.Pipeline.dll", entries);
            Assert.Contains("tools/net10.0/any/Synchro.Pipeline.LocalPostgres.dll", entries);
            Assert.Contains("README.md", entries);
        }
        Assert.Empty(Directory.GetFiles(feed, "Synchro.Pipeline.LocalPostgres.*"));

        // Only this folder as a source, and a package cache of its own: a package of the same version installed
        // before (another build of the same commit) must not stand in for this one.
        var nugetConfig = Path.Combine(_root, "nuget.config");
        await File.WriteAllTextAsync(nugetConfig, "<configuration><packageSources><clear /></packageSources></configuration>");
        var (installed, installOutput) = await DotnetAsync(
            ["tool", "install", "--tool-path", tools, "--configfile", nugetConfig, "--add-source", feed, ToolId, "--version", version],
            s_installTimeout,
            ownPackageCache: true);
        Assert.True(installed == 0, $"dotnet tool install exited with {installed}:\n{installOutput}");
        var executable = Path.Combine(tools, Command);
        Assert.True(File.Exists(executable), $"no {executable} after the install:\n{installOutput}");
        var (versionExit, printed) = await ProgramRunner.RunAsync(executable, ["--version"], _root, s_installTimeout, CancellationToken.None);
        Assert.True(versionExit == 0, $"--version exited with {versionExit}: {printed}");
        // The informational version: the package version, then the commit after a '+'.
        var informational = printed.Trim();
        Assert.True(informational == version || informational.StartsWith(version + "+", StringComparison.Ordinal), $"--version printed '{informational}', the package is {version}");

        var (runVersionExit, runPrinted) = await ProgramRunner.RunAsync(executable, ["run", "--version"], _root, s_installTimeout, CancellationToken.None);
        Assert.True(runVersionExit == 0, $"run --version exited with {runVersionExit}: {runPrinted}");
        Assert.Equal(informational, runPrinted.Trim());

        var (demoExit, demoOutput) = await ProgramRunner.RunAsync(executable, ["demo", "--duration", "3"], _root, s_demoTimeout, CancellationToken.None);
        Assert.True(demoExit == ExitCodes.Ok, $"demo exited with {demoExit}:\n{demoOutput}");
        Assert.Contains("verification passed", demoOutput, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Runs <c>dotnet</c>; with <paramref name="ownPackageCache"/>, restoring into this test's package cache instead of the user's.</summary>
    private async Task<(int ExitCode, string Output)> DotnetAsync(IReadOnlyList<string> arguments, TimeSpan timeout, bool ownPackageCache = false)
    {
        // The test host runs under `dotnet test`, whose MSBuild variables would steer a nested build.
        var environment = Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(name => name.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase))
            .ToDictionary(name => name, string? (_) => null);
        if (ownPackageCache)
            environment["NUGET_PACKAGES"] = Path.Combine(_root, "packages");
        return await ProgramRunner.RunAsync("dotnet", arguments, _root, timeout, CancellationToken.None, environment);
    }

    private static void AssertMetadata(XElement metadata, string id, string version)
    {
        string? Value(string name) => metadata.Element(metadata.Name.Namespace + name)?.Value;

        Assert.Equal(id, Value("id"));
        Assert.Equal(version, Value("version"));
        var license = metadata.Element(metadata.Name.Namespace + "license")!;
        Assert.Equal(("expression", "MIT"), ((string?)license.Attribute("type"), license.Value));
        Assert.Equal("README.md", Value("readme"));
        Assert.False(string.IsNullOrWhiteSpace(Value("description")));
        Assert.Contains("postgresql", Value("tags") ?? "", StringComparison.Ordinal);
        var repository = metadata.Element(metadata.Name.Namespace + "repository")!;
        Assert.StartsWith("https://", (string?)repository.Attribute("url"), StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{40}$", (string?)repository.Attribute("commit"));
    }

    private static XElement Nuspec(string feed, string id, string version)
    {
        var package = Path.Combine(feed, $"{id}.{version}.nupkg");
        Assert.True(File.Exists(Path.Combine(feed, $"{id}.{version}.snupkg")), $"no symbol package beside {package}");
        using var zip = ZipFile.OpenRead(package);
        using var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        return XDocument.Load(nuspec).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    /// <summary>The version of the one package <paramref name="id"/> in <paramref name="feed"/>, from its file name.</summary>
    private static string PackedVersion(string feed, string id)
    {
        var packages = Directory.GetFiles(feed, $"{id}.*.nupkg")
            .Select(Path.GetFileName)
            .Select(name => name![(id.Length + 1)..^".nupkg".Length])
            .Where(version => char.IsAsciiDigit(version[0]))
            .ToList();
        return Assert.Single(packages);
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Synchro.Pipeline.sln")))
                return directory.FullName;
        }
        throw new InvalidOperationException("Synchro.Pipeline.sln not found above the test output directory.");
    }
}
