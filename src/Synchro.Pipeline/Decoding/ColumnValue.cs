using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Decoding;

/// <summary>Where one referenced column's text sits in its batch's byte arena.</summary>
/// <remarks>
/// <see cref="Kind"/> is <see cref="TupleValueKind.Text"/>, <see cref="TupleValueKind.Null"/> or
/// <see cref="TupleValueKind.UnchangedToast"/> (a TOASTed value the server did not resend); the latter two have no bytes.
/// </remarks>
internal readonly record struct ColumnValue(int Offset, int Length, TupleValueKind Kind);
