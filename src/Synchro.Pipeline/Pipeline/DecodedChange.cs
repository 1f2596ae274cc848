using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Pipeline;

/// <summary>One row change of a registered table, reduced to what bucket assignment and the changelog need.</summary>
/// <remarks>
/// <see cref="Values"/> holds the text of <see cref="TableRegistration.ReferencedColumns"/> in that order:
/// null for SQL NULL, <see cref="UnchangedToast"/> for a TOASTed value the server did not resend.
/// </remarks>
internal sealed class DecodedChange(TableRegistration table, string recordId, ChangeOperation operation, string?[] values)
{
    /// <summary>Stands for a value the server left out because it was TOASTed and unchanged.</summary>
    public static readonly string UnchangedToast = new(['\u0000', 'u']);

    public TableRegistration Table { get; } = table;

    public string RecordId { get; } = recordId;

    public ChangeOperation Operation { get; } = operation;

    public string?[] Values { get; } = values;
}
