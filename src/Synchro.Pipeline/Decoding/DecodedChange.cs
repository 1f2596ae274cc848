using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>One row change of a registered table, reduced to what bucket assignment and the changelog need.</summary>
/// <remarks>
/// A view into its <see cref="ChangeBatch"/>: the text of <see cref="TableRegistration.ReferencedColumns"/>, in that
/// order, is the batch's values <see cref="FirstValue"/> onwards (read them through the batch); with a
/// <see cref="RowLayout.FullRow"/> layout the whole row (and, when <see cref="HasOldRow"/>, the old row) follows. Invariant: the first
/// values are the id columns' (<see cref="TableRegistration.IdColumns"/>): a one-column id is text, a composite one text or
/// NULL in each column — the decoder never adds a change whose id lacks a value (an unchanged TOAST value the server did not resend).
/// Valid only until the batch is released.
/// </remarks>
internal readonly record struct DecodedChange(TableRegistration Table, ChangeOperation Operation, int FirstValue, RowLayout? Layout = null, bool HasOldRow = false)
{
    /// <summary>The index of the first value of the whole row, or -1 when the change carries only the referenced columns.</summary>
    public int RowValue => Layout is { FullRow: true } ? FirstValue + Table.ReferencedColumns.Count : -1;

    /// <summary>The index of the first value of the old row, or -1 when the change has none.</summary>
    public int OldRowValue => HasOldRow && Layout is { FullRow: true } layout ? RowValue + layout.Names.Length : -1;
}
