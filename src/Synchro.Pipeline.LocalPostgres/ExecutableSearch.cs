namespace Synchro.Pipeline.LocalPostgres;

internal static class ExecutableSearch
{
    /// <summary>Returns the first existing <paramref name="name"/> in PATH followed by <paramref name="extraDirectories"/>.</summary>
    public static string? Find(string name, params string[] extraDirectories)
    {
        var pathDirectories = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return pathDirectories.Concat(extraDirectories)
            .Select(directory => Path.Combine(directory, name))
            .FirstOrDefault(File.Exists);
    }
}
