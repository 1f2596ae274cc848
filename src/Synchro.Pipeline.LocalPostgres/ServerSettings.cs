using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>The <c>postgresql.conf</c> settings of a throwaway server: fast, unsafe on crash, ready for logical replication.</summary>
internal sealed partial class ServerSettings
{
    private static readonly string[] s_managedNames = ["port", "listen_addresses", "unix_socket_directories"];

    private readonly Dictionary<string, string> _settings;

    private ServerSettings(Dictionary<string, string> settings)
    {
        _settings = settings;
    }

    /// <summary>Built-in defaults overridden by <paramref name="overrides"/>; invalid or managed names are rejected.</summary>
    public static ServerSettings Create(IDictionary<string, string> overrides)
    {
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["wal_level"] = "logical",
            ["max_replication_slots"] = "64",
            ["max_wal_senders"] = "64",
            ["max_connections"] = "200",
            ["max_prepared_transactions"] = "16",
            ["shared_buffers"] = "128MB",
            ["fsync"] = "off",
            ["synchronous_commit"] = "off",
            ["full_page_writes"] = "off",
            ["log_min_messages"] = "warning",
        };

        foreach (var (name, value) in overrides)
        {
            if (!SettingName().IsMatch(name))
            {
                throw new ArgumentException($"'{name}' is not a valid postgresql.conf setting name.", nameof(overrides));
            }

            if (s_managedNames.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"'{name}' is managed by {nameof(LocalPostgresServer)} and cannot be overridden.", nameof(overrides));
            }

            settings[name] = value ?? throw new ArgumentException($"Setting '{name}' has a null value.", nameof(overrides));
        }

        return new ServerSettings(settings);
    }

    /// <summary>These settings with <paramref name="overrides"/> applied on top, validated as in <see cref="Create"/>.</summary>
    public ServerSettings With(IEnumerable<KeyValuePair<string, string>> overrides)
    {
        var merged = new Dictionary<string, string>(_settings, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in overrides)
        {
            merged[name] = value;
        }

        return Create(merged);
    }

    /// <summary>
    /// Appends the settings to <paramref name="baseConfiguration"/> (initdb's file); later lines win in postgresql.conf.
    /// Every value is quoted, which PostgreSQL accepts for settings of any type.
    /// A built-in setting that <paramref name="serverVersion"/> lacks is left out (an unknown name stops the server).
    /// </summary>
    public string Render(string baseConfiguration, int port, string socketDirectory, int serverVersion)
    {
        var builder = new StringBuilder(baseConfiguration);
        builder.Append("\n# Synchro.Pipeline.LocalPostgres\n");
        Append(builder, "listen_addresses", "127.0.0.1");
        Append(builder, "port", port.ToString(CultureInfo.InvariantCulture));
        Append(builder, "unix_socket_directories", socketDirectory);

        // 18 sizes the replication origins' progress slots apart from the slots (default 10); as many as before.
        if (serverVersion >= 18 && !_settings.ContainsKey("max_active_replication_origins"))
        {
            Append(builder, "max_active_replication_origins", _settings["max_replication_slots"]);
        }

        foreach (var (name, value) in _settings)
        {
            Append(builder, name, value);
        }

        return builder.ToString();
    }

    private static void Append(StringBuilder builder, string name, string value)
    {
        var quoted = value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal);
        builder.Append(CultureInfo.InvariantCulture, $"{name} = '{quoted}'\n");
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_.]*$")]
    private static partial Regex SettingName();
}
