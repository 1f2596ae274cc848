namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// Client programs (<c>psql</c>, <c>pgbench</c>, <c>pg_recvlogical</c>): beside the server binaries, else the newest
/// in <c>/usr/lib/postgresql/*/bin</c>, else on PATH. The npm server builds carry none, and a client 15 or newer
/// works against every supported server.
/// </summary>
internal static class ClientPrograms
{
    public static string Find(string name, string serverBinDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is a path, not a program name.", nameof(name));
        }

        return new[] { serverBinDirectory }.Concat(PostgresBinaries.DebianBinDirectories())
                .Select(directory => Path.Combine(directory, name))
                .FirstOrDefault(File.Exists)
            ?? ExecutableSearch.Find(name)
            ?? throw new LocalPostgresException(
                $"The client program {name} was not found beside the server binaries in {serverBinDirectory}, in /usr/lib/postgresql/*/bin or on PATH; "
                + "install PostgreSQL's client programs (Debian/Ubuntu: apt-get install -y postgresql).");
    }
}
