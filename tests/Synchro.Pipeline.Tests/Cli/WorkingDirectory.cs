namespace Synchro.Pipeline.Tests.Cli;

/// <summary>An empty temporary directory to run the CLI in, with its configuration file; deleted on dispose.</summary>
internal sealed class WorkingDirectory : IDisposable
{
    public WorkingDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"synchro-cli-{Guid.NewGuid():N}");

    /// <summary>Writes <paramref name="json"/> as <paramref name="name"/> (by default the file the CLI reads when no --config is given).</summary>
    public string WriteFile(string json, string name = "synchro-pipeline.json")
    {
        var file = System.IO.Path.Combine(Path, name);
        File.WriteAllText(file, json);
        return file;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
