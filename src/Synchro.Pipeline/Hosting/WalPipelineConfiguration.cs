using System.Collections.Frozen;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Hosting;

/// <summary>
/// Reads <see cref="WalPipelineOptions"/> from a configuration section (by convention <see cref="DefaultSectionName"/>),
/// by hand: no reflection, so it is trimming- and AOT-safe, and strict: every key must be a known setting.
/// </summary>
/// <remarks>
/// <para>
/// Keys (case-insensitive, as everywhere in Microsoft.Extensions.Configuration): <c>ConnectionString</c>,
/// <c>ChangelogConnectionString</c>, <c>PrimaryConnectionString</c>, <c>SlotName</c>, <c>PublicationName</c>, <c>CreateSlotIfMissing</c>,
/// <c>MaxBatchRows</c>, <c>MaxBatchBytes</c>, <c>BatchLinger</c>, <c>WalBufferBytes</c>, <c>ReadCoalescing</c>, <c>StatusInterval</c>,
/// <c>MaxReconnectDelay</c>, <c>SlotWaitTimeout</c>, <c>BatchWriteTimeout</c>, <c>RuleQueryTimeout</c>, <c>ParentLookupTimeout</c>, <c>TruncateTimeout</c>,
/// <c>SnapshotChunkTimeout</c>, <c>ReplayChunkTimeout</c>, <c>MaxStatementRetries</c>, <c>SlowBatchThreshold</c>, <c>BinaryTupleMode</c>, <c>HeartbeatInterval</c>, <c>SlotHealthInterval</c>,
/// <c>SlotSafeWalSizeWarning</c>, <c>SkipOrigins</c> (a list, or one comma-separated value), <c>TagOwnWrites</c>,
/// <c>FilterOriginsOnServer</c>, <c>InitialSnapshot</c>, <c>WaitForLock</c>,
/// <c>MaxBucketsPerChange</c>, <c>MaxRecordIdBytes</c>, <c>MaxBucketIdBytes</c>, <c>GlobalBucketFunction</c> (sets <see cref="TableRegistry.GlobalBucketFunction"/> of
/// <see cref="WalPipelineOptions.Tables"/>), <c>StreamLargeTransactions</c>, <c>TwoPhase</c>, <c>SpillDirectory</c>, <c>MaxSpillBytes</c>, <c>CompactionInterval</c>, <c>DeleteRetention</c>, <c>CascadeParentMoves</c>, <c>Failover</c>, <c>FailoverStandbys</c> (a list of connection strings) and <c>Tables</c>.
/// </para>
/// <para>
/// <c>Tables</c> holds one entry per table, keyed by its name (<c>orders</c>, or schema-qualified <c>app.orders</c>),
/// with the <see cref="TableRegistration"/> settings <c>IdColumn</c>, <c>IdColumns</c> (a list, or one comma-separated value),
/// <c>SoftDeleteColumn</c>, <c>OwnerColumn</c>, <c>BucketByColumn</c>, <c>BucketPrefix</c>, <c>GlobalWhenBucketNull</c>, <c>ParentTable</c>,
/// <c>ParentForeignKeyColumn</c>, <c>ParentForeignKeyColumns</c> (a list, or one comma-separated value), <c>BucketFunction</c> and <c>DecodeAllColumns</c>; an empty entry (<c>"categories": {}</c>) takes every default. Being keys, single
/// settings can be overridden one by one, e.g. by the environment variable <c>Synchro__Tables__orders__OwnerColumn</c>.
/// The tables are added to <see cref="WalPipelineOptions.Tables"/>. An empty <c>SoftDeleteColumn</c> means none;
/// an empty <c>ChangelogConnectionString</c> means the source database, an empty <c>PrimaryConnectionString</c> the default.
/// </para>
/// <para>
/// Values: whole numbers in invariant culture; booleans <c>true</c>/<c>false</c>; byte sizes as a whole number of
/// bytes, optionally with the suffix <c>KiB</c>, <c>MiB</c> or <c>GiB</c> (<c>8MiB</c>); durations either as
/// <c>[d.]hh:mm:ss[.fffffff]</c> (<c>00:00:10</c>) or as a number with a unit <c>ms</c>, <c>s</c>, <c>m</c>,
/// <c>h</c> or <c>d</c> (<c>250ms</c>, <c>10s</c>, <c>1.5m</c>). A bare number is rejected as a duration, because
/// <see cref="TimeSpan"/> would read <c>10</c> as ten days. A key without a value (a JSON <c>null</c>) keeps the default.
/// </para>
/// <para>
/// Ranges are checked later by <see cref="WalPipelineOptions.Validate"/>; this checks keys and value syntax. Values
/// of string settings (connection strings may hold passwords) are never repeated in a message.
/// </para>
/// </remarks>
public static class WalPipelineConfiguration
{
    /// <summary>The conventional name of the configuration section: <c>Synchro</c>.</summary>
    public const string DefaultSectionName = "Synchro";

    // Longest part of a bad value repeated in a message, so one problem stays one readable line.
    private const int MaxShownValueLength = 40;

    private delegate void SettingBinder(IConfigurationSection setting, WalPipelineOptions options, List<string> problems);

    private delegate void TableSettingBinder(IConfigurationSection setting, TableSettings table, List<string> problems);

    private static readonly FrozenDictionary<string, SettingBinder> s_settings = new Dictionary<string, SettingBinder>
    {
        [nameof(WalPipelineOptions.ConnectionString)] = (s, o, p) => o.ConnectionString = Text(s, p) ?? o.ConnectionString,
        [nameof(WalPipelineOptions.ChangelogConnectionString)] = (s, o, p) => o.ChangelogConnectionString = EmptyIsNull(Text(s, p), o.ChangelogConnectionString),
        [nameof(WalPipelineOptions.PrimaryConnectionString)] = (s, o, p) => o.PrimaryConnectionString = EmptyIsNull(Text(s, p), o.PrimaryConnectionString),
        [nameof(WalPipelineOptions.SlotName)] = (s, o, p) => o.SlotName = Text(s, p) ?? o.SlotName,
        [nameof(WalPipelineOptions.PublicationName)] = (s, o, p) => o.PublicationName = Text(s, p) ?? o.PublicationName,
        [nameof(WalPipelineOptions.CreateSlotIfMissing)] = (s, o, p) => o.CreateSlotIfMissing = Boolean(s, p) ?? o.CreateSlotIfMissing,
        [nameof(WalPipelineOptions.InitialSnapshot)] = (s, o, p) => o.InitialSnapshot = Boolean(s, p) ?? o.InitialSnapshot,
        [nameof(WalPipelineOptions.MaxBatchRows)] = (s, o, p) => o.MaxBatchRows = WholeNumber(s, p) ?? o.MaxBatchRows,
        [nameof(WalPipelineOptions.MaxBatchBytes)] = (s, o, p) => o.MaxBatchBytes = ByteSize(s, p) ?? o.MaxBatchBytes,
        [nameof(WalPipelineOptions.BatchLinger)] = (s, o, p) => o.BatchLinger = Duration(s, p) ?? o.BatchLinger,
        [nameof(WalPipelineOptions.WalBufferBytes)] = (s, o, p) => o.WalBufferBytes = ByteSize(s, p) ?? o.WalBufferBytes,
        [nameof(WalPipelineOptions.ReadCoalescing)] = (s, o, p) => o.ReadCoalescing = Boolean(s, p) ?? o.ReadCoalescing,
        [nameof(WalPipelineOptions.TagOwnWrites)] = (s, o, p) => o.TagOwnWrites = Boolean(s, p) ?? o.TagOwnWrites,
        [nameof(WalPipelineOptions.CascadeParentMoves)] = (s, o, p) => o.CascadeParentMoves = Boolean(s, p) ?? o.CascadeParentMoves,
        [nameof(WalPipelineOptions.Failover)] = (s, o, p) => o.Failover = Boolean(s, p) ?? o.Failover,
        [nameof(WalPipelineOptions.FailoverStandbys)] = BindFailoverStandbys,
        [nameof(WalPipelineOptions.FilterOriginsOnServer)] = (s, o, p) => o.FilterOriginsOnServer = Boolean(s, p) ?? o.FilterOriginsOnServer,
        [nameof(WalPipelineOptions.StatusInterval)] = (s, o, p) => o.StatusInterval = Duration(s, p) ?? o.StatusInterval,
        [nameof(WalPipelineOptions.MaxReconnectDelay)] = (s, o, p) => o.MaxReconnectDelay = Duration(s, p) ?? o.MaxReconnectDelay,
        [nameof(WalPipelineOptions.SlotWaitTimeout)] = (s, o, p) => o.SlotWaitTimeout = Duration(s, p) ?? o.SlotWaitTimeout,
        [nameof(WalPipelineOptions.BatchWriteTimeout)] = (s, o, p) => o.BatchWriteTimeout = Duration(s, p) ?? o.BatchWriteTimeout,
        [nameof(WalPipelineOptions.RuleQueryTimeout)] = (s, o, p) => o.RuleQueryTimeout = Duration(s, p) ?? o.RuleQueryTimeout,
        [nameof(WalPipelineOptions.ParentLookupTimeout)] = (s, o, p) => o.ParentLookupTimeout = Duration(s, p) ?? o.ParentLookupTimeout,
        [nameof(WalPipelineOptions.TruncateTimeout)] = (s, o, p) => o.TruncateTimeout = Duration(s, p) ?? o.TruncateTimeout,
        [nameof(WalPipelineOptions.SnapshotChunkTimeout)] = (s, o, p) => o.SnapshotChunkTimeout = Duration(s, p) ?? o.SnapshotChunkTimeout,
        [nameof(WalPipelineOptions.ReplayChunkTimeout)] = (s, o, p) => o.ReplayChunkTimeout = Duration(s, p) ?? o.ReplayChunkTimeout,
        [nameof(WalPipelineOptions.MaxStatementRetries)] = (s, o, p) => o.MaxStatementRetries = WholeNumber(s, p) ?? o.MaxStatementRetries,
        [nameof(WalPipelineOptions.SlowBatchThreshold)] = (s, o, p) => o.SlowBatchThreshold = Duration(s, p) ?? o.SlowBatchThreshold,
        [nameof(WalPipelineOptions.BinaryTupleMode)] = (s, o, p) => o.BinaryTupleMode = Boolean(s, p) ?? o.BinaryTupleMode,
        [nameof(WalPipelineOptions.StreamLargeTransactions)] = (s, o, p) => o.StreamLargeTransactions = Boolean(s, p) ?? o.StreamLargeTransactions,
        [nameof(WalPipelineOptions.TwoPhase)] = (s, o, p) => o.TwoPhase = Boolean(s, p) ?? o.TwoPhase,
        [nameof(WalPipelineOptions.SpillDirectory)] = (s, o, p) => o.SpillDirectory = EmptyIsNull(Text(s, p), o.SpillDirectory),
        [nameof(WalPipelineOptions.MaxSpillBytes)] = (s, o, p) => o.MaxSpillBytes = ByteSize(s, p) ?? o.MaxSpillBytes,
        [nameof(WalPipelineOptions.Tables)] = BindTables,
        [nameof(WalPipelineOptions.HeartbeatInterval)] = (s, o, p) => o.HeartbeatInterval = Duration(s, p) ?? o.HeartbeatInterval,
        [nameof(WalPipelineOptions.SlotHealthInterval)] = (s, o, p) => o.SlotHealthInterval = Duration(s, p) ?? o.SlotHealthInterval,
        [nameof(WalPipelineOptions.SlotSafeWalSizeWarning)] = (s, o, p) => o.SlotSafeWalSizeWarning = ByteSize(s, p) ?? o.SlotSafeWalSizeWarning,
        [nameof(WalPipelineOptions.SkipOrigins)] = BindSkipOrigins,
        [nameof(WalPipelineOptions.CompactionInterval)] = (s, o, p) => o.CompactionInterval = Duration(s, p) ?? o.CompactionInterval,
        [nameof(WalPipelineOptions.DeleteRetention)] = (s, o, p) => o.DeleteRetention = Duration(s, p) ?? o.DeleteRetention,
        [nameof(WalPipelineOptions.MaxBucketsPerChange)] = (s, o, p) => o.MaxBucketsPerChange = WholeNumber(s, p) ?? o.MaxBucketsPerChange,
        [nameof(WalPipelineOptions.MaxRecordIdBytes)] = (s, o, p) => o.MaxRecordIdBytes = WholeNumber(s, p) ?? o.MaxRecordIdBytes,
        [nameof(WalPipelineOptions.MaxBucketIdBytes)] = (s, o, p) => o.MaxBucketIdBytes = WholeNumber(s, p) ?? o.MaxBucketIdBytes,
        [nameof(TableRegistry.GlobalBucketFunction)] = (s, o, p) => o.Tables.GlobalBucketFunction = EmptyIsNull(Text(s, p), o.Tables.GlobalBucketFunction),
        [nameof(WalPipelineOptions.WaitForLock)] = (s, o, p) => o.WaitForLock = Boolean(s, p) ?? o.WaitForLock,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private static readonly FrozenDictionary<string, TableSettingBinder> s_tableSettings = new Dictionary<string, TableSettingBinder>
    {
        [nameof(TableRegistration.IdColumn)] = (s, t, p) => t.IdColumn = ColumnName(s, p) ?? t.IdColumn,
        [nameof(TableRegistration.IdColumns)] = (s, t, p) => t.IdColumns = ColumnNames(s, p) ?? t.IdColumns,
        [nameof(TableRegistration.SoftDeleteColumn)] = (s, t, p) => t.SoftDeleteColumn = EmptyIsNull(Text(s, p), t.SoftDeleteColumn),
        [nameof(TableRegistration.OwnerColumn)] = (s, t, p) => t.OwnerColumn = EmptyIsNull(Text(s, p), t.OwnerColumn),
        [nameof(TableRegistration.BucketByColumn)] = (s, t, p) => t.BucketByColumn = EmptyIsNull(Text(s, p), t.BucketByColumn),
        [nameof(TableRegistration.BucketPrefix)] = (s, t, p) => t.BucketPrefix = Text(s, p) ?? t.BucketPrefix,
        [nameof(TableRegistration.GlobalWhenBucketNull)] = (s, t, p) => t.GlobalWhenBucketNull = Boolean(s, p) ?? t.GlobalWhenBucketNull,
        [nameof(TableRegistration.ParentTable)] = (s, t, p) => t.ParentTable = EmptyIsNull(Text(s, p), t.ParentTable),
        [nameof(TableRegistration.ParentForeignKeyColumn)] = (s, t, p) => t.ParentForeignKeyColumn = EmptyIsNull(Text(s, p), t.ParentForeignKeyColumn),
        [nameof(TableRegistration.ParentForeignKeyColumns)] = (s, t, p) => t.ParentForeignKeyColumns = ColumnNames(s, p) ?? t.ParentForeignKeyColumns,
        [nameof(TableRegistration.BucketFunction)] = (s, t, p) => t.BucketFunction = EmptyIsNull(Text(s, p), t.BucketFunction),
        [nameof(TableRegistration.DecodeAllColumns)] = (s, t, p) => t.DecodeAllColumns = Boolean(s, p) ?? t.DecodeAllColumns,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    // Names in the order they are documented, for "known settings" lists.
    private static readonly string[] s_settingNames =
    [
        nameof(WalPipelineOptions.ConnectionString), nameof(WalPipelineOptions.ChangelogConnectionString), nameof(WalPipelineOptions.SlotName),
        nameof(WalPipelineOptions.PublicationName), nameof(WalPipelineOptions.CreateSlotIfMissing), nameof(WalPipelineOptions.Tables),
        nameof(WalPipelineOptions.MaxBatchRows), nameof(WalPipelineOptions.MaxBatchBytes), nameof(WalPipelineOptions.BatchLinger),
        nameof(WalPipelineOptions.WalBufferBytes), nameof(WalPipelineOptions.ReadCoalescing), nameof(WalPipelineOptions.StatusInterval),
        nameof(WalPipelineOptions.MaxReconnectDelay), nameof(WalPipelineOptions.SlotWaitTimeout),
        nameof(WalPipelineOptions.BatchWriteTimeout), nameof(WalPipelineOptions.RuleQueryTimeout),
        nameof(WalPipelineOptions.ParentLookupTimeout), nameof(WalPipelineOptions.TruncateTimeout), nameof(WalPipelineOptions.SnapshotChunkTimeout),
        nameof(WalPipelineOptions.ReplayChunkTimeout), nameof(WalPipelineOptions.MaxStatementRetries),
        nameof(WalPipelineOptions.SlowBatchThreshold), nameof(WalPipelineOptions.BinaryTupleMode), nameof(WalPipelineOptions.HeartbeatInterval), nameof(WalPipelineOptions.SlotHealthInterval),
        nameof(WalPipelineOptions.SlotSafeWalSizeWarning), nameof(WalPipelineOptions.SkipOrigins), nameof(WalPipelineOptions.TagOwnWrites),
        nameof(WalPipelineOptions.FilterOriginsOnServer), nameof(WalPipelineOptions.InitialSnapshot),
        nameof(WalPipelineOptions.MaxBucketsPerChange), nameof(WalPipelineOptions.MaxRecordIdBytes), nameof(WalPipelineOptions.MaxBucketIdBytes),
        nameof(TableRegistry.GlobalBucketFunction),
        nameof(WalPipelineOptions.StreamLargeTransactions), nameof(WalPipelineOptions.TwoPhase), nameof(WalPipelineOptions.SpillDirectory),
        nameof(WalPipelineOptions.MaxSpillBytes), nameof(WalPipelineOptions.CompactionInterval), nameof(WalPipelineOptions.DeleteRetention),
        nameof(WalPipelineOptions.CascadeParentMoves), nameof(WalPipelineOptions.Failover), nameof(WalPipelineOptions.FailoverStandbys),
        nameof(WalPipelineOptions.PrimaryConnectionString),
        nameof(WalPipelineOptions.WaitForLock),
    ];

    private static readonly string[] s_tableSettingNames =
    [
        nameof(TableRegistration.IdColumn), nameof(TableRegistration.IdColumns), nameof(TableRegistration.SoftDeleteColumn), nameof(TableRegistration.OwnerColumn),
        nameof(TableRegistration.BucketByColumn), nameof(TableRegistration.BucketPrefix), nameof(TableRegistration.GlobalWhenBucketNull),
        nameof(TableRegistration.ParentTable), nameof(TableRegistration.ParentForeignKeyColumn), nameof(TableRegistration.ParentForeignKeyColumns),
        nameof(TableRegistration.BucketFunction), nameof(TableRegistration.DecodeAllColumns),
    ];

    /// <summary>Sets every option <paramref name="section"/> has a key for; options without a key keep their value.</summary>
    /// <param name="section">The section holding the settings, e.g. <c>configuration.GetSection("Synchro")</c>.</param>
    /// <param name="options">The options to update. When this throws, they may be partly updated.</param>
    /// <exception cref="WalPipelineConfigurationException">
    /// One or more keys are unknown or have values of the wrong form; <see cref="WalPipelineConfigurationException.Errors"/>
    /// lists every one, each naming the full key path (<c>Synchro:MaxBatchRows: 'ten' is not a whole number</c>).
    /// </exception>
    public static void Bind(IConfiguration section, WalPipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(options);

        var problems = new List<string>();
        if (section is IConfigurationSection { Value.Length: > 0 } self)
            problems.Add($"{self.Path}: expected a section of settings ({string.Join(", ", s_settingNames)}), found a single value");

        foreach (var setting in section.GetChildren())
        {
            if (s_settings.TryGetValue(setting.Key, out var bind))
                bind(setting, options, problems);
            else
                problems.Add(UnknownKey(setting, "setting", s_settingNames));
        }

        if (problems.Count > 0)
            throw new WalPipelineConfigurationException(problems);
    }

    private static void BindTables(IConfigurationSection tables, WalPipelineOptions options, List<string> problems)
    {
        if (tables.Value is { Length: > 0 })
        {
            problems.Add($"{tables.Path}: expected one entry per table (\"{tables.Key}\": {{ \"orders\": {{ \"OwnerColumn\": \"user_id\" }} }}), found a single value");
            return;
        }

        foreach (var entry in tables.GetChildren())
        {
            if (entry.Value is { Length: > 0 })
            {
                problems.Add($"{entry.Path}: expected the table's settings ({string.Join(", ", s_tableSettingNames)}), found a single value");
                continue;
            }

            var settings = new TableSettings();
            var before = problems.Count;
            foreach (var setting in entry.GetChildren())
            {
                if (s_tableSettings.TryGetValue(setting.Key, out var bind))
                    bind(setting, settings, problems);
                else
                    problems.Add(UnknownKey(setting, "table setting", s_tableSettingNames));
            }
            if (problems.Count == before)
                AddTable(entry, settings, options.Tables, problems);
        }
    }

    /// <summary>Origin names: a list (<c>"SkipOrigins": ["a", "b"]</c>, or keys <c>SkipOrigins:0</c>...) or one comma-separated value.</summary>
    private static void BindSkipOrigins(IConfigurationSection setting, WalPipelineOptions options, List<string> problems)
    {
        var names = setting.Value is { } list
            ? list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            : setting.GetChildren().Select(c => Text(c, problems)).OfType<string>().Select(n => n.Trim()).ToArray();
        foreach (var name in names)
        {
            if (name.Length == 0)
                problems.Add($"{setting.Path}: an empty origin name; list replication origin names");
            else
                options.SkipOrigins.Add(name);
        }
    }

    // A list only: a connection string holds semicolons and, with several hosts, commas.
    private static void BindFailoverStandbys(IConfigurationSection setting, WalPipelineOptions options, List<string> problems)
    {
        IConfigurationSection[] entries = setting.Value is not null ? [setting] : [.. setting.GetChildren()];
        foreach (var entry in entries)
        {
            if (Text(entry, problems) is { Length: > 0 } connectionString)
                options.FailoverStandbys.Add(connectionString);
            else
                problems.Add($"{entry.Path}: an empty connection string; list the standbys' connection strings");
        }
    }

    private static void AddTable(IConfigurationSection entry, TableSettings settings, TableRegistry tables, List<string> problems)
    {
        // One of each pair: a list of one column is the single form, so setting both is a contradiction, not an override.
        var idTwice = settings.IdColumn is not null && settings.IdColumns is not null;
        var parentKeyTwice = settings.ParentForeignKeyColumn is not null && settings.ParentForeignKeyColumns is not null;
        if (idTwice)
            problems.Add($"{entry.Path}: both IdColumn and IdColumns are set; keep IdColumns for an id of several columns, or IdColumn for one");
        if (parentKeyTwice)
            problems.Add($"{entry.Path}: both ParentForeignKeyColumn and ParentForeignKeyColumns are set; keep ParentForeignKeyColumns for a parent key of several columns, or ParentForeignKeyColumn for one");
        if (idTwice || parentKeyTwice)
            return;

        TableRegistration table;
        try
        {
            table = new TableRegistration(entry.Key)
            {
                IdColumns = settings.IdColumns ?? [settings.IdColumn ?? s_defaultIdColumn],
                SoftDeleteColumn = settings.SoftDeleteColumn,
                OwnerColumn = settings.OwnerColumn,
                BucketByColumn = settings.BucketByColumn,
                BucketPrefix = settings.BucketPrefix,
                GlobalWhenBucketNull = settings.GlobalWhenBucketNull,
                ParentTable = settings.ParentTable,
                ParentForeignKeyColumns = settings.ParentForeignKeyColumns ?? (settings.ParentForeignKeyColumn is { } parentKey ? [parentKey] : null),
                BucketFunction = settings.BucketFunction,
                DecodeAllColumns = settings.DecodeAllColumns,
            };
        }
        catch (ArgumentException)
        {
            problems.Add($"{entry.Path}: '{Show(entry.Key)}' is not a table name; use 'table' or 'schema.table'");
            return;
        }

        if (tables.TryGet(table.Schema, table.Name, out _))
            problems.Add($"{entry.Path}: table {table.QualifiedName} is configured twice (a name without a schema is in schema '{TableRegistration.DefaultSchema}')");
        else
            tables.Add(table);
    }

    /// <summary>The value of a setting that must be a value, not a section; null when the key has no value.</summary>
    private static string? Text(IConfigurationSection setting, List<string> problems)
    {
        if (setting.GetChildren().Any())
        {
            problems.Add($"{setting.Path}: expected a value, found a section ({string.Join(", ", setting.GetChildren().Select(c => c.Key))})");
            return null;
        }
        return setting.Value;
    }

    private static readonly string s_defaultIdColumn = new TableRegistration("defaults").IdColumn;

    private static string? EmptyIsNull(string? value, string? unset) => value is null ? unset : value.Length == 0 ? null : value;

    private static string? ColumnName(IConfigurationSection setting, List<string> problems)
    {
        var value = Text(setting, problems);
        if (value is { Length: 0 })
        {
            problems.Add($"{setting.Path}: must name a column");
            return null;
        }
        return value;
    }

    /// <summary>
    /// Column names: a list (<c>"IdColumns": ["tenant_id", "id"]</c>, or keys <c>IdColumns:0</c>...) taken as written, or one
    /// comma-separated value (<c>tenant_id, id</c>) whose names are trimmed; null when the key has no value.
    /// </summary>
    private static string[]? ColumnNames(IConfigurationSection setting, List<string> problems)
    {
        var children = setting.GetChildren().ToList();
        string?[] names;
        if (children.Count > 0)
        {
            if (children.Any(c => c.GetChildren().Any()))
            {
                problems.Add($"{setting.Path}: expected a list of column names, found a section");
                return null;
            }
            // Keys 0, 1, ... in numeric order (configuration sorts them as text: 10 before 2).
            names = [.. children.OrderBy(c => int.TryParse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : int.MaxValue).Select(c => c.Value)];
        }
        else if (setting.Value is { } list)
        {
            names = list.Split(',', StringSplitOptions.TrimEntries);
        }
        else
        {
            return null;
        }
        if (names.Length == 0 || names.Any(string.IsNullOrEmpty))
        {
            problems.Add($"{setting.Path}: must name one or more columns, none of them empty");
            return null;
        }
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
        {
            problems.Add($"{setting.Path}: names a column twice");
            return null;
        }
        return names!;
    }

    private static bool? Boolean(IConfigurationSection setting, List<string> problems)
    {
        if (Text(setting, problems) is not { } text)
            return null;
        if (bool.TryParse(text.Trim(), out var value))
            return value;
        problems.Add($"{setting.Path}: '{Show(text)}' is not true or false");
        return null;
    }

    private static int? WholeNumber(IConfigurationSection setting, List<string> problems)
    {
        if (Text(setting, problems) is not { } text)
            return null;
        if (int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            return value;
        problems.Add($"{setting.Path}: '{Show(text)}' is not a whole number (at most {int.MaxValue})");
        return null;
    }

    /// <summary>Bytes: a whole number, optionally with a binary unit (<c>64KiB</c>, <c>8 MiB</c>, <c>1GiB</c>).</summary>
    private static long? ByteSize(IConfigurationSection setting, List<string> problems)
    {
        if (Text(setting, problems) is not { } text)
            return null;
        var (number, unit) = SplitUnit(text);
        long multiplier = unit.ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "KIB" => 1L << 10,
            "MIB" => 1L << 20,
            "GIB" => 1L << 30,
            _ => 0,
        };
        if (multiplier != 0
            && long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var count)
            && count <= long.MaxValue / multiplier && count >= long.MinValue / multiplier)
        {
            return count * multiplier;
        }
        problems.Add($"{setting.Path}: '{Show(text)}' is not a size in bytes; write a whole number of bytes, optionally with KiB, MiB or GiB (8MiB)");
        return null;
    }

    /// <summary>A duration: <c>hh:mm:ss</c> (with optional days and fraction) or a number with a unit (<c>250ms</c>, <c>10s</c>).</summary>
    private static TimeSpan? Duration(IConfigurationSection setting, List<string> problems)
    {
        if (Text(setting, problems) is not { } text)
            return null;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            if (TimeSpan.TryParse(text.Trim(), CultureInfo.InvariantCulture, out var span))
                return span;
        }
        else
        {
            var (number, unit) = SplitUnit(text);
            double? unitMilliseconds = unit.ToUpperInvariant() switch
            {
                "MS" => 1,
                "S" => 1_000,
                "M" or "MIN" => 60_000,
                "H" => 3_600_000,
                "D" => 86_400_000,
                _ => null,
            };
            if (unitMilliseconds is { } scale
                && double.TryParse(number, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount)
                && Math.Abs(amount * scale) < TimeSpan.MaxValue.TotalMilliseconds)
            {
                return TimeSpan.FromMilliseconds(amount * scale);
            }
        }
        var hint = IsBareNumber(text) ? " (a bare number has no unit)" : "";
        problems.Add($"{setting.Path}: '{Show(text)}' is not a duration{hint}; write 250ms, 10s, 5m, 1h or 00:00:10");
        return null;

        static bool IsBareNumber(string text) => double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _);
    }

    /// <summary>Splits <c>"10 s"</c> into <c>("10", "s")</c>: the unit is everything from the first letter.</summary>
    private static (string Number, string Unit) SplitUnit(string text)
    {
        var trimmed = text.Trim();
        var unitStart = 0;
        while (unitStart < trimmed.Length && !char.IsAsciiLetter(trimmed[unitStart]))
            unitStart++;
        return (trimmed[..unitStart].TrimEnd(), trimmed[unitStart..]);
    }

    private static string UnknownKey(IConfigurationSection setting, string kind, string[] known)
    {
        // The value is not shown: a misspelt ConnectionString would hold a password.
        var closest = known.MinBy(name => EditDistance(name.ToUpperInvariant(), setting.Key.ToUpperInvariant()))!;
        return EditDistance(closest.ToUpperInvariant(), setting.Key.ToUpperInvariant()) <= Math.Max(2, setting.Key.Length / 4)
            ? $"{setting.Path}: unknown {kind}; did you mean {closest}?"
            : $"{setting.Path}: unknown {kind}; the known ones are {string.Join(", ", known)}";
    }

    /// <summary>Levenshtein distance, for "did you mean" on a misspelt key.</summary>
    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
            previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    private static string Show(string value)
    {
        var oneLine = new string(value.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return oneLine.Length <= MaxShownValueLength ? oneLine : oneLine[..MaxShownValueLength] + "…";
    }

    /// <summary>A table's settings as read, before the (init-only) registration is made; defaults are the registration's.</summary>
    private sealed class TableSettings
    {
        private static readonly TableRegistration s_defaults = new("defaults");

        /// <summary>Null unless the key was given: the default is applied when the registration is made.</summary>
        public string? IdColumn { get; set; }

        public string[]? IdColumns { get; set; }

        public string? SoftDeleteColumn { get; set; } = s_defaults.SoftDeleteColumn;

        public string? OwnerColumn { get; set; }

        public string? BucketByColumn { get; set; }

        public string BucketPrefix { get; set; } = s_defaults.BucketPrefix;

        public bool GlobalWhenBucketNull { get; set; }

        public string? ParentTable { get; set; }

        public string? ParentForeignKeyColumn { get; set; }

        public string[]? ParentForeignKeyColumns { get; set; }

        public string? BucketFunction { get; set; }

        public bool DecodeAllColumns { get; set; }
    }
}
