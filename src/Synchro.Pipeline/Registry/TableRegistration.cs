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

    /// <summary>The column whose text form is the record id. Default <c>id</c>. For an id of several columns, set <see cref="IdColumns"/> instead.</summary>
    /// <remarks>The id must identify one row: the start-up checks want a primary key or a unique index on it (<see cref="IdColumns"/>).</remarks>
    /// <exception cref="InvalidOperationException">Read on a table whose id has several columns (<see cref="IdColumns"/>).</exception>
    /// <exception cref="ArgumentException">Set to null or empty.</exception>
    public string IdColumn
    {
        get => _idColumns.Length == 1
            ? _idColumns[0]
            : throw new InvalidOperationException($"Table {QualifiedName} has an id of several columns ({string.Join(", ", _idColumns)}); read IdColumns.");
        init
        {
            ArgumentException.ThrowIfNullOrEmpty(value);
            _idColumns = [value];
            IdSetTwice |= _idColumnsSet;
            _idColumnSet = true;
        }
    }

    /// <summary>
    /// The columns whose values together are the record id, in this order: one (<see cref="IdColumn"/>, default <c>id</c>), or
    /// several for a table keyed by more than one column (<c>["tenant_id", "id"]</c>, a composite primary key).
    /// </summary>
    /// <remarks>
    /// <para>
    /// With one column the record id is that column's text form, as it has always been. With several it is a JSON array of
    /// their text forms in this order, each a string, NULL as <c>null</c> (<c>["1","7"]</c>; <see cref="FormatRecordId"/>,
    /// <see cref="ParseRecordId"/>; the exact form is in docs/buckets.md).
    /// </para>
    /// <para>
    /// The columns must identify one row: at start the pipeline wants a primary key or a unique index (not partial, not
    /// deferrable) whose columns are all among them, and a replica identity that carries all of them.
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentException">Set to an empty list, a list with an empty name, or one naming a column twice.</exception>
    public IReadOnlyList<string> IdColumns
    {
        get => _idColumns;
        init
        {
            _idColumns = CheckColumns(value, nameof(IdColumns)) ?? throw new ArgumentNullException(nameof(value));
            IdSetTwice |= _idColumnSet;
            _idColumnsSet = true;
        }
    }

    /// <summary>Whether the record id has several columns (<see cref="IdColumns"/>), so it is a JSON array rather than one column's text.</summary>
    public bool HasCompositeId => _idColumns.Length > 1;

    private string[] _idColumns = ["id"];
    private bool _idColumnSet;
    private bool _idColumnsSet;
    private bool _parentKeySet;
    private bool _parentKeysSet;

    /// <summary>Both <see cref="IdColumn"/> and <see cref="IdColumns"/> were set (the registry reports it).</summary>
    internal bool IdSetTwice { get; private set; }

    /// <summary>Both <see cref="ParentForeignKeyColumn"/> and <see cref="ParentForeignKeyColumns"/> were set (the registry reports it).</summary>
    internal bool ParentKeySetTwice { get; private set; }

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

    /// <summary>For child tables: the column holding the parent record's id. For a parent whose id has several columns, set <see cref="ParentForeignKeyColumns"/>.</summary>
    /// <exception cref="InvalidOperationException">Read on a table whose parent key has several columns (<see cref="ParentForeignKeyColumns"/>).</exception>
    public string? ParentForeignKeyColumn
    {
        get => _parentKey switch
        {
            null => null,
            [var column] => column,
            _ => throw new InvalidOperationException($"Table {QualifiedName} points to its parent through several columns ({string.Join(", ", _parentKey)}); read ParentForeignKeyColumns."),
        };
        init
        {
            _parentKey = string.IsNullOrEmpty(value) ? null : [value];
            ParentKeySetTwice |= _parentKeysSet && _parentKey is not null;
            _parentKeySet |= _parentKey is not null;
        }
    }

    /// <summary>
    /// For child tables: the columns holding the parent record's id, one per column of the parent's <see cref="IdColumns"/>
    /// and in that order (<c>["tenant_id", "doc_id"]</c> for a parent keyed by <c>["tenant_id", "id"]</c>); null for none.
    /// </summary>
    /// <remarks>A child whose parent key has a NULL column points to no parent (as a SQL foreign key with a NULL is not checked): its record is in no bucket.</remarks>
    /// <exception cref="ArgumentException">Set to an empty list, a list with an empty name, or one naming a column twice.</exception>
    public IReadOnlyList<string>? ParentForeignKeyColumns
    {
        get => _parentKey;
        init
        {
            _parentKey = CheckColumns(value, nameof(ParentForeignKeyColumns));
            ParentKeySetTwice |= _parentKeySet && _parentKey is not null;
            _parentKeysSet |= _parentKey is not null;
        }
    }

    private string[]? _parentKey;

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

    /// <summary>Every column this registration reads from a change: the id columns first, then soft-delete, bucket and parent key columns.</summary>
    public IReadOnlyList<string> ReferencedColumns => _referencedColumns ??=
        _idColumns.Append(SoftDeleteColumn).Append(BucketColumn).Concat(_parentKey ?? []).OfType<string>().Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// The record id of the row whose id columns (<see cref="IdColumns"/>, in that order) have the text forms
    /// <paramref name="values"/> (null for SQL NULL): the one value itself for a one-column id, else the JSON array.
    /// </summary>
    /// <remarks>The text forms are PostgreSQL's (<c>column::text</c>): <c>7</c>, <c>t</c>, a uuid in lower case with dashes.</remarks>
    /// <exception cref="ArgumentException">Not one value per id column, or a null value of a one-column id (which has no record id).</exception>
    public string FormatRecordId(IReadOnlyList<string?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count != _idColumns.Length)
            throw new ArgumentException($"Table {QualifiedName} has {_idColumns.Length} id column(s) ({string.Join(", ", _idColumns)}); {values.Count} value(s) were given.", nameof(values));
        if (_idColumns.Length > 1)
            return CompositeRecordId.Format(values);
        return values[0] ?? throw new ArgumentException($"The id column {_idColumns[0]} of table {QualifiedName} is never NULL in a record id.", nameof(values));
    }

    /// <summary>
    /// The text forms of the id columns (<see cref="IdColumns"/>, in that order; null for SQL NULL) that
    /// <paramref name="recordId"/>, a changelog record id of this table, names.
    /// </summary>
    /// <exception cref="FormatException">A composite id that is not a JSON array of one string or null per id column.</exception>
    public IReadOnlyList<string?> ParseRecordId(string recordId)
    {
        ArgumentNullException.ThrowIfNull(recordId);
        return TryParseRecordId(recordId, out var values)
            ? values
            : throw new FormatException($"'{recordId}' is not a record id of table {QualifiedName}: expected a JSON array of {_idColumns.Length} strings or nulls ({string.Join(", ", _idColumns)}).");
    }

    /// <summary>The id column values <paramref name="recordId"/> names; false when it is not a record id of this table.</summary>
    internal bool TryParseRecordId(string recordId, out string?[] values)
    {
        if (_idColumns.Length == 1)
        {
            values = [recordId];
            return true;
        }
        return CompositeRecordId.TryParse(recordId, _idColumns.Length, out values);
    }

    /// <summary>The id columns for messages: <c>id</c>, or <c>tenant_id, id</c>.</summary>
    internal string IdColumnsText => string.Join(", ", _idColumns);

    private static string[]? CheckColumns(IReadOnlyList<string>? columns, string parameterName)
    {
        if (columns is null)
            return null;
        if (columns.Count == 0)
            throw new ArgumentException("At least one column must be named.", parameterName);
        var copy = columns.ToArray();
        foreach (var column in copy)
        {
            if (string.IsNullOrEmpty(column))
                throw new ArgumentException("A column name is null or empty.", parameterName);
        }
        if (copy.Distinct(StringComparer.Ordinal).Count() != copy.Length)
            throw new ArgumentException($"A column is named twice ({string.Join(", ", copy)}).", parameterName);
        return copy;
    }

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
