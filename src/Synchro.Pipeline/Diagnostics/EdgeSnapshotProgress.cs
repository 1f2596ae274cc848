namespace Synchro.Pipeline.Diagnostics;

/// <summary>How far an initial snapshot load is, reported after every chunk and at the end of every table.</summary>
/// <param name="Table">The table being read.</param>
/// <param name="TableRows">Rows of <paramref name="Table"/> loaded so far.</param>
/// <param name="TableEstimate">The server's estimate of the table's rows (<c>pg_class.reltuples</c>; 0 when never analysed).</param>
/// <param name="TotalRows">Rows of every table loaded so far.</param>
/// <param name="TableDone">Whether <paramref name="Table"/> is finished.</param>
internal readonly record struct EdgeSnapshotProgress(string Table, long TableRows, long TableEstimate, long TotalRows, bool TableDone);
