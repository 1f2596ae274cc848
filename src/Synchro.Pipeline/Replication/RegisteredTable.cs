namespace Synchro.Pipeline.Replication;

/// <summary>A table the pipeline consumes, as the start-up checks see it.</summary>
/// <param name="Schema">The schema, exactly as in the catalog (case-sensitive).</param>
/// <param name="Name">The table name, exactly as in the catalog (case-sensitive).</param>
/// <param name="IdColumns">
/// The columns whose values are the record id: a unique key must be among them (so one id names one row), and deletes must carry them.
/// </param>
/// <param name="RequiredColumns">
/// Every column the registry references for the table (id, soft-delete, owner or bucket-by, parent foreign key).
/// </param>
internal sealed record RegisteredTable(string Schema, string Name, IReadOnlyList<string> IdColumns, IReadOnlyList<string> RequiredColumns)
{
    /// <summary>For a child table: the columns holding its parent record's id, in the order of the parent's id columns; empty otherwise.</summary>
    public IReadOnlyList<string> ParentForeignKey { get; init; } = [];

    /// <summary>For a child table: its parent table (schema and name, exactly as in the catalog); null otherwise.</summary>
    public (string Schema, string Name)? Parent { get; init; }

    /// <summary>A table with a one-column id.</summary>
    public RegisteredTable(string schema, string name, string idColumn, IReadOnlyList<string> requiredColumns)
        : this(schema, name, [idColumn], requiredColumns)
    {
    }
}
