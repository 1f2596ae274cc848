using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Synchro.Pipeline.Hosting;

namespace Synchro.Pipeline.Cli.Configuration;

/// <summary>
/// The flags every database command takes, and the layered configuration they complete: the JSON file, then
/// environment variables, then flags, each overriding the one before, all read as the <c>Synchro</c> section.
/// </summary>
/// <remarks>
/// Environment variables follow the Microsoft.Extensions.Configuration convention, <c>__</c> for the <c>:</c> of a
/// key path, unprefixed: <c>Synchro__SlotName</c>, <c>Synchro__Tables__orders__OwnerColumn</c> (keys are
/// case-insensitive, so <c>SYNCHRO__SLOTNAME</c> works too). Only keys under <c>Synchro</c> are read, so other
/// variables (<c>SYNCHRO_PG_BINDIR</c>, with one underscore) never collide.
/// </remarks>
internal sealed class SettingsFlags
{
    /// <summary>Read when <c>--config</c> is not given and it exists in the current directory.</summary>
    public const string DefaultConfigFile = "synchro-pipeline.json";

    private static readonly string s_section = WalPipelineConfiguration.DefaultSectionName;

    private readonly Option<string> _config = new("--config", "-c")
    {
        Description = $"JSON configuration file, settings under \"{s_section}\" [default: {DefaultConfigFile} in the current directory, if present]",
        HelpName = "path",
    };

    private readonly Option<string> _connection = new("--connection")
    {
        Description = $"Source database connection string ({s_section}:ConnectionString); prefer the file or {s_section}__ConnectionString for a password, which flags show in the process list",
        HelpName = "connection string",
    };

    private readonly Option<string> _changelogConnection = new("--changelog-connection")
    {
        Description = $"Changelog database connection string ({s_section}:ChangelogConnectionString) [default: the source database]",
        HelpName = "connection string",
    };

    private readonly Option<string> _slot = new("--slot")
    {
        Description = $"Replication slot ({s_section}:SlotName)",
        HelpName = "name",
    };

    private readonly Option<string> _publication = new("--publication")
    {
        Description = $"Publication ({s_section}:PublicationName)",
        HelpName = "name",
    };

    private readonly Option<bool> _binaryTuples = new("--binary-tuples")
    {
        Description = $"Ask the server for column values in binary format ({s_section}:BinaryTupleMode; PostgreSQL 14+, key columns of common types)",
    };

    private readonly Option<bool> _skipInitialSnapshot = new("--skip-initial-snapshot")
    {
        Description = $"When the slot is created, do not load the bucket edges of existing rows from its snapshot ({s_section}:InitialSnapshot=false); for applications that populate sync_bucket_edges themselves",
    };

    private readonly Option<bool> _failover = new("--failover")
    {
        Description = $"Make the slot a failover slot that standbys with sync_replication_slots keep a copy of ({s_section}:Failover; PostgreSQL 17+); check then verifies the standbys named in the connection string's Host",
    };

    private readonly Option<string[]> _standbys = new("--standby")
    {
        Description = $"A standby's connection string, for check to verify its slot synchronisation with --failover ({s_section}:FailoverStandbys; repeat for each standby)",
        HelpName = "connection string",
    };

    private readonly Option<bool> _noReadCoalescing = new("--no-read-coalescing")
    {
        Description = $"Do not hold the socket thread to coalesce reads on a busy stream ({s_section}:ReadCoalescing=false); on by default when socket completions run inline, as the CLI sets them up",
    };

    private readonly bool _withPublication;
    private readonly Command _command;
    private readonly List<(Option<string> Option, string Setting)> _settings = [];
    private readonly List<(Option<bool> Option, string Setting)> _switches = [];

    /// <param name="command">The command that takes the flags.</param>
    /// <param name="withPublication">Whether the command takes <c>--publication</c> (<c>status</c> and <c>migrate</c> do not need one).</param>
    public SettingsFlags(Command command, bool withPublication)
    {
        _withPublication = withPublication;
        _command = command;
        command.Options.Add(_config);
        command.Options.Add(_connection);
        command.Options.Add(_changelogConnection);
        command.Options.Add(_slot);
        if (withPublication)
        {
            command.Options.Add(_publication);
            command.Options.Add(_binaryTuples);
            command.Options.Add(_skipInitialSnapshot);
            command.Options.Add(_failover);
            command.Options.Add(_standbys);
            command.Options.Add(_noReadCoalescing);
        }
    }

    /// <summary>Adds a flag of the command that sets <paramref name="setting"/>, a layer above the file and the environment, checked as they are.</summary>
    public void AddSetting(Option<string> option, string setting)
    {
        _command.Options.Add(option);
        _settings.Add((option, setting));
    }

    /// <summary>Adds a flag of the command that sets the boolean <paramref name="setting"/> to true when given, a layer above the file and the environment.</summary>
    public void AddSwitch(Option<bool> option, string setting)
    {
        _command.Options.Add(option);
        _switches.Add((option, setting));
    }

    /// <summary>
    /// Whether socket completions run inline in this process, the default of <see cref="WalPipelineOptions.ReadCoalescing"/>
    /// under every layer. Default: <see cref="SocketCompletions.Inline"/>.
    /// </summary>
    public bool InlineSocketCompletions { get; init; } = SocketCompletions.Inline;

    /// <summary>Reads the file, the environment and the flags into options.</summary>
    /// <exception cref="SettingsException">The file is missing or malformed, or a setting is unknown or malformed; the message names every one.</exception>
    public Settings Load(ParseResult parse)
    {
        var builder = new ConfigurationBuilder();
        var sources = new List<string>();

        var file = parse.GetValue(_config);
        if (file is null && File.Exists(DefaultConfigFile))
            file = DefaultConfigFile;
        if (file is not null)
        {
            var path = Path.GetFullPath(file);
            if (!File.Exists(path))
                throw new SettingsException($"The configuration file {path} does not exist (--config).");
            builder.AddJsonFile(path, optional: false, reloadOnChange: false);
            sources.Add(path);
        }

        builder.AddEnvironmentVariables();
        sources.Add($"environment ({s_section}__*)");

        var flags = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        AddFlag(flags, parse, _connection, nameof(WalPipelineOptions.ConnectionString));
        AddFlag(flags, parse, _changelogConnection, nameof(WalPipelineOptions.ChangelogConnectionString));
        AddFlag(flags, parse, _slot, nameof(WalPipelineOptions.SlotName));
        if (_withPublication)
            AddFlag(flags, parse, _publication, nameof(WalPipelineOptions.PublicationName));
        foreach (var (option, setting) in _settings)
            AddFlag(flags, parse, option, setting);
        foreach (var (option, setting) in _switches)
        {
            if (parse.GetValue(option))
                flags[$"{s_section}:{setting}"] = "true";
        }
        // Only a given flag is a layer: its absence leaves the file's or the environment's value.
        if (_withPublication && parse.GetValue(_binaryTuples))
            flags[$"{s_section}:{nameof(WalPipelineOptions.BinaryTupleMode)}"] = "true";
        if (_withPublication && parse.GetValue(_skipInitialSnapshot))
            flags[$"{s_section}:{nameof(WalPipelineOptions.InitialSnapshot)}"] = "false";
        if (_withPublication && parse.GetValue(_failover))
            flags[$"{s_section}:{nameof(WalPipelineOptions.Failover)}"] = "true";
        if (_withPublication && parse.GetValue(_standbys) is { } standbys)
        {
            for (var i = 0; i < standbys.Length; i++)
                flags[$"{s_section}:{nameof(WalPipelineOptions.FailoverStandbys)}:{i.ToString(CultureInfo.InvariantCulture)}"] = standbys[i];
        }
        if (_withPublication && parse.GetValue(_noReadCoalescing))
            flags[$"{s_section}:{nameof(WalPipelineOptions.ReadCoalescing)}"] = "false";
        if (flags.Count > 0)
        {
            builder.AddInMemoryCollection(flags);
            sources.Add("flags");
        }

        IConfigurationRoot configuration;
        try
        {
            configuration = builder.Build();
        }
        catch (InvalidDataException e)
        {
            // The JSON provider wraps the parser's error, which has the line and position.
            throw new SettingsException($"The configuration file {file} could not be read: {e.InnerException?.Message ?? e.Message}", e);
        }

        // The CLI owns its process: read coalescing follows its socket completions unless a layer says otherwise.
        var options = new WalPipelineOptions { ReadCoalescing = InlineSocketCompletions };
        var described = string.Join(", ", sources);
        try
        {
            WalPipelineConfiguration.Bind(configuration.GetSection(s_section), options);
        }
        catch (WalPipelineConfigurationException e)
        {
            throw new SettingsException($"Invalid settings (read from {described}):" + string.Concat(e.Errors.Select(p => Environment.NewLine + " - " + p)), e);
        }
        return new Settings(options, described);
    }

    private static void AddFlag(Dictionary<string, string?> flags, ParseResult parse, Option<string> option, string setting)
    {
        if (parse.GetValue(option) is { } value)
            flags[$"{s_section}:{setting}"] = value;
    }
}
