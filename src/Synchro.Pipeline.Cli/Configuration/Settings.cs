using Npgsql;

namespace Synchro.Pipeline.Cli.Configuration;

/// <summary>The pipeline's options as read from the configuration file, the environment and the flags, and where they came from.</summary>
internal sealed class Settings(WalPipelineOptions options, string sources)
{
    public WalPipelineOptions Options { get; } = options;

    /// <summary>The sources read, for messages: <c>/etc/synchro-pipeline.json, environment, flags</c>.</summary>
    public string Sources { get; } = sources;

    /// <summary>Every option checked, as <c>run</c> and <c>check</c> need them.</summary>
    /// <exception cref="SettingsException">An option is invalid; the message names each.</exception>
    public void ValidateAll()
    {
        try
        {
            Options.Validate();
        }
        catch (ArgumentException e)
        {
            // Validate lists its problems under a header of its own; ours says where the settings came from instead.
            const string header = "Invalid WalPipelineOptions:";
            throw Invalid(e.Message.StartsWith(header, StringComparison.Ordinal) ? e.Message[header.Length..] : " " + e.Message);
        }
    }

    /// <summary>The source connection string and the slot name, which are all <c>status</c> needs.</summary>
    /// <exception cref="SettingsException">One is missing or invalid.</exception>
    public void ValidateSlotAndConnection()
    {
        var problems = new List<string>();
        CheckConnectionString(problems, nameof(WalPipelineOptions.ConnectionString), Options.ConnectionString);
        if (Options.ChangelogConnectionString is { } changelog)
            CheckConnectionString(problems, nameof(WalPipelineOptions.ChangelogConnectionString), changelog);
        if (string.IsNullOrEmpty(Options.SlotName))
            problems.Add($"{nameof(WalPipelineOptions.SlotName)} is required (--slot)");
        if (problems.Count > 0)
            throw Invalid(Describe(problems));
    }

    /// <summary>The changelog database's connection string, which is all <c>migrate</c> needs.</summary>
    /// <exception cref="SettingsException">It is missing or invalid.</exception>
    public string ChangelogConnectionString()
    {
        var problems = new List<string>();
        var name = Options.ChangelogConnectionString is null ? nameof(WalPipelineOptions.ConnectionString) : nameof(WalPipelineOptions.ChangelogConnectionString);
        var connectionString = Options.ChangelogConnectionString ?? Options.ConnectionString;
        CheckConnectionString(problems, name, connectionString);
        if (problems.Count > 0)
            throw Invalid(Describe(problems));
        return connectionString;
    }

    private SettingsException Invalid(string problems) => new($"Invalid settings (read from {Sources}):{problems}");

    private static string Describe(List<string> problems) => string.Concat(problems.Select(p => Environment.NewLine + " - " + p));

    private static void CheckConnectionString(List<string> problems, string name, string value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            var flag = name == nameof(WalPipelineOptions.ConnectionString) ? "--connection" : "--changelog-connection";
            problems.Add($"{name} is required ({flag})");
            return;
        }
        try
        {
            _ = new NpgsqlConnectionStringBuilder(value);
        }
        catch (ArgumentException e)
        {
            // The builder's message never includes the password.
            problems.Add($"{name} is not a valid connection string: {e.Message}");
        }
    }
}
