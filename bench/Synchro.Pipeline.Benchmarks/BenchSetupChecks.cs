using System.Globalization;
using System.Text;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// Run from GlobalSetup: proves the baseline decodes the stream exactly as our parser does (so the
/// comparison is between equivalent work), and measures what our parser allocates.
/// </summary>
internal static class BenchSetupChecks
{
    public static readonly PgOutputOptions Options = new(protocolVersion: 1);

    /// <summary>Throws unless the baseline and our parser agree on every message and every row value.</summary>
    public static void ValidateBaseline(BenchRowsFixture fixture)
    {
        var ours = RenderWithParser(fixture.Frames);
        var theirs = RenderWithBaseline(fixture.Frames);
        if (ours.Count != theirs.Count)
            throw new InvalidOperationException($"Baseline decoded {theirs.Count} messages, our parser {ours.Count}.");
        var rows = 0;
        for (var i = 0; i < ours.Count; i++)
        {
            if (!ours[i].SameAs(theirs[i]))
                throw new InvalidOperationException($"Message {i + 1} (LSN {fixture.Frames[i].Lsn}) differs:{Environment.NewLine}  parser:   {ours[i]}{Environment.NewLine}  baseline: {theirs[i]}");
            if (ours[i].Values is not null)
                rows++;
        }
        if (rows != fixture.RowMessageCount)
            throw new InvalidOperationException($"Expected {fixture.RowMessageCount} row messages, decoded {rows}.");

        var parserTotals = RunParser<EveryColumn>(fixture.Frames);
        var baselineTotals = RunBaseline(fixture.Frames, BaselineConsumer.Consume);
        if (!parserTotals.SameAs(baselineTotals))
            throw new InvalidOperationException($"Consumers disagree:{Environment.NewLine}  parser:   {parserTotals}{Environment.NewLine}  baseline: {baselineTotals}");
        var parserIds = RunParser<IdAndOwner>(fixture.Frames);
        var baselineIds = RunBaseline(fixture.Frames, BaselineConsumer.ConsumeIdAndOwner);
        if (!parserIds.SameAs(baselineIds))
            throw new InvalidOperationException($"Id and owner consumers disagree:{Environment.NewLine}  parser:   {parserIds}{Environment.NewLine}  baseline: {baselineIds}");
        Console.WriteLine($"// Validation: baseline and PgOutputParser agree on all {ours.Count:N0} messages and {rows:N0} rows ({parserTotals}).");
    }

    public delegate void BaselineRowConsumer(ref RowTotals totals, BaselineMessage message);

    public static RowTotals RunParser<TRows>(BenchFrame[] frames)
        where TRows : struct, IRowConsumer
    {
        var parser = new PgOutputParser(Options);
        var handler = new RowHandler<TRows>();
        foreach (var frame in frames)
            parser.Parse(frame.Payload, frame.Lsn, ref handler);
        return handler.Totals;
    }

    public static RowTotals RunBaseline(BenchFrame[] frames, BaselineRowConsumer consume)
    {
        var decoder = new StringDecodingBaseline();
        var totals = new RowTotals();
        foreach (var frame in frames)
            consume(ref totals, decoder.Decode(frame.Payload));
        return totals;
    }

    public static long AllocatedBy(Action action)
    {
        action();
        action();
        var before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>
    /// Bytes our parser (with <see cref="RowHandler{TRows}"/>) allocates while parsing the row messages
    /// alone, the relation already cached; measured on a warmed-up second pass.
    /// </summary>
    public static long AllocatedByRowMessages(BenchFrame[] frames)
    {
        long allocated = 0;
        for (var pass = 0; pass < 3; pass++)
        {
            allocated = 0;
            var parser = new PgOutputParser(Options);
            var handler = new RowHandler<EveryColumn>();
            foreach (var frame in frames)
            {
                if (!frame.IsRow)
                {
                    parser.Parse(frame.Payload, frame.Lsn, ref handler);
                    continue;
                }
                var before = GC.GetAllocatedBytesForCurrentThread();
                parser.Parse(frame.Payload, frame.Lsn, ref handler);
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }
        return allocated;
    }

    private static List<Rendered> RenderWithParser(BenchFrame[] frames)
    {
        var parser = new PgOutputParser(Options);
        var handler = new RenderingHandler();
        foreach (var frame in frames)
        {
            var before = handler.Messages.Count;
            parser.Parse(frame.Payload, frame.Lsn, ref handler);
            if (handler.Messages.Count != before + 1)
                throw new InvalidOperationException($"Message at {frame.Lsn} (kind '{(char)frame.Kind}') was not rendered by the validation handler.");
        }
        return handler.Messages;
    }

    private static List<Rendered> RenderWithBaseline(BenchFrame[] frames)
    {
        var decoder = new StringDecodingBaseline();
        var result = new List<Rendered>(frames.Length);
        foreach (var frame in frames)
        {
            result.Add(decoder.Decode(frame.Payload) switch
            {
                BaselineBegin b => new Rendered(Invariant($"B {b.FinalLsn} {b.CommitTimestamp} {b.Xid}"), null),
                BaselineCommit c => new Rendered(Invariant($"C {c.Flags} {c.CommitLsn} {c.EndLsn} {c.CommitTimestamp}"), null),
                BaselineRelationMessage r => new Rendered(RenderRelation(r.Relation.Oid, r.Relation.Schema, r.Relation.Name, r.Relation.ReplicaIdentity,
                    r.Relation.Columns.Select(c => (c.Name, c.TypeOid, c.TypeModifier, c.IsKey))), null),
                BaselineRowChange change => RenderBaselineRow(change),
                var other => throw new InvalidOperationException($"Unexpected baseline message {other}."),
            });
        }
        return result;
    }

    private static Rendered RenderBaselineRow(BaselineRowChange change)
    {
        if (change.OldRow is not null)
            throw new InvalidOperationException("The benchmark stream has no old tuples.");
        var row = change.NewRow!;
        var values = new string?[change.Relation.Columns.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var name = change.Relation.Columns[i].Name;
            if (!row.TryGetValue(name, out values[i]))
                throw new InvalidOperationException($"Baseline row lacks column {name}.");
        }
        if (row.Count != values.Length)
            throw new InvalidOperationException($"Baseline row has {row.Count} columns, the relation {values.Length}.");
        return new Rendered(Invariant($"{change.Kind} {change.Relation.Oid} {string.Join(",", change.Relation.Columns.Select(c => c.Name))}"), values);
    }

    private static string RenderRelation(uint oid, string schema, string name, char identity, IEnumerable<(string Name, uint TypeOid, int TypeModifier, bool IsKey)> columns)
        => Invariant($"R {oid} {schema}.{name} {identity} [{string.Join("; ", columns.Select(c => Invariant($"{c.Name} {c.TypeOid} {c.TypeModifier} {c.IsKey}")))}]");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>One message as text, plus a row's values in column order (null for non-row messages).</summary>
    private sealed record Rendered(string Header, string?[]? Values)
    {
        public bool SameAs(Rendered other)
            => Header == other.Header
                && (Values is null ? other.Values is null : other.Values is not null && Values.AsSpan().SequenceEqual(other.Values));

        public override string ToString()
            => Values is null ? Header : $"{Header} = [{string.Join(", ", Values.Select(v => v is null ? "NULL" : $"'{v}'"))}]";
    }

    /// <summary>Turns our parser's views into <see cref="Rendered"/> (strings allocated: validation only).</summary>
    private readonly struct RenderingHandler : IPgOutputHandler
    {
        public RenderingHandler()
        {
        }

        public List<Rendered> Messages { get; } = [];

        public void OnBegin(in BeginMessage m) => Messages.Add(new(Invariant($"B {m.FinalLsn.Value} {m.CommitTimestamp} {m.Xid}"), null));

        public void OnCommit(in CommitMessage m) => Messages.Add(new(Invariant($"C {m.Flags} {m.CommitLsn.Value} {m.EndLsn.Value} {m.CommitTimestamp}"), null));

        public void OnRelation(in RelationMessage m)
        {
            var r = m.Relation;
            Messages.Add(new(RenderRelation(r.Oid, r.Schema, r.Name, (char)r.ReplicaIdentity, r.Columns.Select(c => (c.Name, c.TypeOid, c.TypeModifier, c.IsKey))), null));
        }

        public void OnInsert(in InsertMessage m) => Messages.Add(Row('I', m.Relation, m.NewRow));

        public void OnUpdate(in UpdateMessage m)
        {
            if (m.OldRowKind != OldTupleKind.None)
                throw new InvalidOperationException("The benchmark stream has no old tuples.");
            Messages.Add(Row('U', m.Relation, m.NewRow));
        }

        private static Rendered Row(char kind, RelationInfo relation, TupleData row)
        {
            var values = new string?[row.Count];
            var i = 0;
            foreach (var value in row)
            {
                values[i++] = value.Kind switch
                {
                    TupleValueKind.Null => null,
                    TupleValueKind.Text => Encoding.UTF8.GetString(value.Data),
                    _ => throw new InvalidOperationException($"Unexpected value kind {value.Kind} in the benchmark stream."),
                };
            }
            return new Rendered(Invariant($"{kind} {relation.Oid} {string.Join(",", relation.Columns.Select(c => c.Name))}"), values);
        }

        public void OnDelete(in DeleteMessage m) => throw Unexpected("Delete");

        public void OnOrigin(in OriginMessage m) => throw Unexpected("Origin");

        public void OnType(in TypeMessage m) => throw Unexpected("Type");

        public void OnTruncate(in TruncateMessage m) => throw Unexpected("Truncate");

        public void OnMessage(in LogicalDecodingMessage m) => throw Unexpected("Message");

        public void OnStreamStart(in StreamStartMessage m) => throw Unexpected("Stream Start");

        public void OnStreamStop() => throw Unexpected("Stream Stop");

        public void OnStreamCommit(in CommitMessage m) => throw Unexpected("Stream Commit");

        public void OnStreamAbort(in StreamAbortMessage m) => throw Unexpected("Stream Abort");

        public void OnBeginPrepare(in PrepareMessage m) => throw Unexpected("Begin Prepare");

        public void OnPrepare(in PrepareMessage m) => throw Unexpected("Prepare");

        public void OnCommitPrepared(in CommitPreparedMessage m) => throw Unexpected("Commit Prepared");

        public void OnRollbackPrepared(in RollbackPreparedMessage m) => throw Unexpected("Rollback Prepared");

        public void OnStreamPrepare(in PrepareMessage m) => throw Unexpected("Stream Prepare");

        private static InvalidOperationException Unexpected(string kind) => new($"Unexpected {kind} message in the benchmark stream.");
    }
}
