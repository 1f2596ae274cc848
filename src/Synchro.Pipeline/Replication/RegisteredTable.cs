namespace Synchro.Pipeline.Replication;

/// <summary>A table the pipeline consumes, as the start-up checks see it.</summary>
/// <param name="Schema">The schema, exactly as in the catalog (case-sensitive).</param>
/// <param name="Name">The table name, exactly as in the catalog (case-sensitive).</param>
/// <param name="IdColumn">The column whose text form is the record id; deletes must carry it.</param>
/// <param name="RequiredColumns">
/// Every column the registry references for the table (id, soft-delete, owner or bucket-by, parent foreign key).
/// </param>
internal sealed record RegisteredTable(string Schema, string Name, string IdColumn, IReadOnlyList<string> RequiredColumns);
