using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Pipeline;

/// <summary>One row change of a registered table, reduced to what bucket assignment and the changelog need.</summary>
/// <remarks>
/// A view into its <see cref="ChangeBatch"/>: the text of <see cref="TableRegistration.ReferencedColumns"/>, in that
/// order, is the batch's values <see cref="FirstValue"/> onwards (read them through the batch). Invariant: the first
/// value, the id column's, is text — the decoder never adds a change whose id is NULL or an unchanged TOAST value.
/// Valid only until the batch is released.
/// </remarks>
internal readonly record struct DecodedChange(TableRegistration Table, ChangeOperation Operation, int FirstValue);
