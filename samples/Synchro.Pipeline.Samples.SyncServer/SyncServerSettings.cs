using Synchro.Pipeline.Hosting;

namespace Synchro.Pipeline.Samples.SyncServer;

/// <summary>The sync server's own settings: the <c>SyncServer</c> section, and the reader's connection string.</summary>
/// <param name="HostPipeline">Whether the pipeline runs in this process (<c>SyncServer:HostPipeline</c>, default true).</param>
/// <param name="ChangelogConnectionString">Where the reader reads the changelog.</param>
public sealed record SyncServerSettings(bool HostPipeline, string ChangelogConnectionString)
{
    /// <summary>The configuration section of these settings.</summary>
    public const string SectionName = "SyncServer";

    /// <summary>The connection string name (<c>ConnectionStrings:Changelog</c>) of the reader's database.</summary>
    public const string ConnectionStringName = "Changelog";

    /// <summary>
    /// Reads the settings. The reader's connection string is <c>ConnectionStrings:Changelog</c> (a role with SELECT on the
    /// changelog tables, or a read replica), else the pipeline's <c>Synchro:ChangelogConnectionString</c>, else its
    /// <c>Synchro:ConnectionString</c> (changelog in the source database).
    /// </summary>
    /// <exception cref="InvalidOperationException">A setting is malformed or no connection string is set; the message says which.</exception>
    public static SyncServerSettings Read(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var hostPipeline = true;
        if (section[nameof(HostPipeline)] is { } text && !bool.TryParse(text.Trim(), out hostPipeline))
            throw new InvalidOperationException($"{SectionName}:{nameof(HostPipeline)} must be true or false, not '{text}'.");

        var pipeline = configuration.GetSection(WalPipelineConfiguration.DefaultSectionName);
        var connectionString = new[]
        {
            configuration.GetConnectionString(ConnectionStringName),
            pipeline[nameof(WalPipelineOptions.ChangelogConnectionString)],
            pipeline[nameof(WalPipelineOptions.ConnectionString)],
        }.FirstOrDefault(s => !string.IsNullOrWhiteSpace(s));
        if (connectionString is null)
        {
            throw new InvalidOperationException(
                $"No changelog database to read: set ConnectionStrings:{ConnectionStringName} (environment: ConnectionStrings__{ConnectionStringName}), "
                + $"or the pipeline's {WalPipelineConfiguration.DefaultSectionName}:ConnectionString.");
        }
        return new SyncServerSettings(hostPipeline, connectionString);
    }
}
