using System.Globalization;
using Synchro.Pipeline.Changelog;

namespace Synchro.Pipeline.Reading;

/// <summary>Settings of a <see cref="ChangelogReader"/>.</summary>
public sealed class ChangelogReaderOptions
{
    /// <summary>The default of <see cref="MaxBuckets"/>.</summary>
    public const int DefaultMaxBuckets = 1_000;

    /// <summary>The default of <see cref="MaxLimit"/>.</summary>
    public const int DefaultMaxLimit = 10_000;

    /// <summary>
    /// The schema holding the changelog tables; null (the default) means the pipeline's own choice for the data source's
    /// connection string (<see cref="ChangelogSchema.SchemaOf"/>: the first schema of its <c>Search Path</c>, else <c>public</c>).
    /// </summary>
    public string? Schema { get; set; }

    /// <summary>The most buckets one call may name (default 1,000): bounds the work of a page.</summary>
    public int MaxBuckets { get; set; } = DefaultMaxBuckets;

    /// <summary>The largest <c>limit</c> one call may pass (default 10,000 rows or members): bounds a page's memory.</summary>
    public int MaxLimit { get; set; } = DefaultMaxLimit;

    /// <summary>
    /// The longest bucket id, in bytes of UTF-8, a call may name (default 1,024). Set it to the pipeline's
    /// <c>MaxBucketIdBytes</c>: the changelog holds no longer ids.
    /// </summary>
    public int MaxBucketIdBytes { get; set; } = ChangelogLimits.DefaultMaxBucketIdBytes;

    /// <summary>How long one statement of a read may run; null (the default) keeps the data source's command timeout.</summary>
    public TimeSpan? CommandTimeout { get; set; }

    /// <summary>Throws when a setting is out of range, naming it and its allowed values.</summary>
    internal void Validate()
    {
        if (MaxBuckets < 1)
            throw Invalid(nameof(MaxBuckets), MaxBuckets, "must be at least 1");
        if (MaxLimit < 1)
            throw Invalid(nameof(MaxLimit), MaxLimit, "must be at least 1");
        if (MaxBucketIdBytes < 1)
            throw Invalid(nameof(MaxBucketIdBytes), MaxBucketIdBytes, "must be at least 1; set it to the pipeline's MaxBucketIdBytes");
        if (CommandTimeout is { } timeout && (timeout <= TimeSpan.Zero || timeout.TotalSeconds > int.MaxValue))
            throw Invalid(nameof(CommandTimeout), timeout, "must be positive (or null to keep the data source's command timeout)");
        if (Schema is not null && Schema.Length == 0)
            throw new ArgumentException("ChangelogReaderOptions.Schema is empty: name the schema of the changelog tables, or leave it null to use the data source's Search Path.", "options");
    }

    private static ArgumentException Invalid(string name, object value, string rule)
        => new(string.Create(CultureInfo.InvariantCulture, $"ChangelogReaderOptions.{name} is {value}; it {rule}."), "options");
}
