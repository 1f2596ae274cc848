namespace Synchro.Pipeline.Registry;

/// <summary>
/// How one source table maps to sync buckets: which column identifies a record, which marks it
/// soft-deleted, and which decides its bucket (its own owner column, or its parent's through a
/// foreign key).
/// </summary>
/// <remarks>
/// The defaults are the synchro reference's: id column <c>id</c>, soft-delete column
/// <c>deleted_at</c>, bucket prefix <c>user:</c>. Names are matched exactly as the server reports
/// them (unquoted SQL names are lower case).
/// </remarks>
public sealed class TableRegistration
{
    /// <summary>The default schema of a name given without one.</summary>
    public const string DefaultSchema = "public";

    /// <summary>Registers <paramref name="name"/>, <c>schema.table</c> or just <c>table</c> (schema <c>public</c>).</summary>
    /// <exception cref="ArgumentException">The name is empty or has more than one dot.</exception>
    public TableRegistration(string name)
    {
        (Schema, Name) = SplitQualifiedName(name, nameof(name));
    }

    /// <summary>The table's schema.</summary>
    public string Schema { get; }

    /// <summary>The table's name within <see cref="Schema"/>.</summary>
    public string Name { get; }

    /// <summary><c>schema.table</c>.</summary>
    public string QualifiedName => $"{Schema}.{Name}";

    /// <summary>
    /// The name written in the changelog's <c>table_name</c> column: the bare name for tables in
    /// <c>public</c> (as the synchro reference writes it), <c>schema.table</c> otherwise.
    /// </summary>
    public string ChangelogName => Schema == DefaultSchema ? Name : QualifiedName;

    /// <summary>The column whose text form is the record id. Default <c>id</c>.</summary>
    public string IdColumn { get; init; } = "id";

    /// <summary>A non-null value in this column turns an UPDATE into a delete. Default <c>deleted_at</c>; null for none.</summary>
    public string? SoftDeleteColumn { get; init; } = "deleted_at";

    /// <summary>The owning user's id; the record's bucket is <see cref="BucketPrefix"/> + its value.</summary>
    public string? OwnerColumn { get; init; }

    /// <summary>A column whose value names the bucket (with <see cref="BucketPrefix"/>); takes precedence over <see cref="OwnerColumn"/>.</summary>
    public string? BucketByColumn { get; init; }

    /// <summary>Prepended to the bucket column's value. Default <c>user:</c>.</summary>
    public string BucketPrefix { get; init; } = "user:";

    /// <summary>A record whose bucket column is null goes to the <c>global</c> bucket instead of none.</summary>
    public bool GlobalWhenBucketNull { get; init; }

    /// <summary>For child tables: the parent table (<c>schema.table</c> or <c>table</c>) whose bucket the record shares.</summary>
    public string? ParentTable { get; init; }

    /// <summary>For child tables: the column holding the parent record's id.</summary>
    public string? ParentForeignKeyColumn { get; init; }

    /// <summary>
    /// A SQL function that decides this table's buckets: <c>name</c> or <c>schema.name</c>, with the signature
    /// <c>(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text</c>. Takes precedence over
    /// <see cref="TableRegistry.GlobalBucketFunction"/> and over the owner, bucket-by and parent settings.
    /// </summary>
    /// <remarks>Evaluated once per batch for all of the batch's changes of the tables that use it (one query, not one per row).</remarks>
    public string? BucketFunction { get; init; }

    /// <summary>
    /// Changes carry every column, not only the referenced ones, so an application's assigner can read any column
    /// (<see cref="Buckets.BucketAssignment.GetValue"/>) and a rule failure keeps the whole row. Implied by a SQL bucket function.
    /// Costs decoding time per row; default false.
    /// </summary>
    public bool DecodeAllColumns { get; init; }

    /// <summary>The column that decides the bucket, if this table has one of its own.</summary>
    public string? BucketColumn => BucketByColumn ?? OwnerColumn;

    /// <summary>Every column this registration reads from a change: the id column first, then soft-delete, bucket and parent columns.</summary>
    public IReadOnlyList<string> ReferencedColumns => _referencedColumns ??=
        new[] { IdColumn, SoftDeleteColumn, BucketColumn, ParentForeignKeyColumn }.OfType<string>().Distinct(StringComparer.Ordinal).ToArray();

    // Computed on first use, after the init-only properties are set.
    private string[]? _referencedColumns;

    /// <summary>The position of <paramref name="column"/> in <see cref="ReferencedColumns"/>, or -1.</summary>
    internal int ReferencedColumnIndex(string column)
    {
        var columns = (string[])ReferencedColumns;
        return Array.IndexOf(columns, column);
    }

    /// <inheritdoc/>
    public override string ToString() => QualifiedName;

    internal static (string Schema, string Name) SplitQualifiedName(string name, string parameterName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name, parameterName);
        var parts = name.Split('.');
        return parts switch
        {
            [var table] when table.Length > 0 => (DefaultSchema, table),
            [var schema, var table] when schema.Length > 0 && table.Length > 0 => (schema, table),
            _ => throw new ArgumentException($"'{name}' is not a table name; expected 'table' or 'schema.table'.", parameterName),
        };
    }
}
