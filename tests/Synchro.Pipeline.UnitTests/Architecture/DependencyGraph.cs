namespace Synchro.Pipeline.Tests.Architecture;

/// <summary>
/// A directed graph of named nodes in which each edge keeps one example of why it exists, and its cycles: the
/// strongly connected components of more than one node (Tarjan).
/// </summary>
internal sealed class DependencyGraph
{
    private readonly SortedDictionary<string, SortedDictionary<string, string>> _edges = new(StringComparer.Ordinal);

    public IEnumerable<string> Nodes => _edges.Keys;

    public IEnumerable<DependencyEdge> Edges => _edges.SelectMany(n => n.Value.Select(e => new DependencyEdge(n.Key, e.Key, e.Value)));

    /// <summary>Adds <paramref name="from"/> → <paramref name="to"/>; a self-edge is ignored, and of several examples the ordinally first is kept, so reports are stable.</summary>
    public void Add(string from, string to, string example)
    {
        if (from == to)
            return;
        Targets(to);
        var targets = Targets(from);
        if (!targets.TryGetValue(to, out var kept) || string.CompareOrdinal(example, kept) < 0)
            targets[to] = example;
    }

    /// <summary>The example kept for <paramref name="from"/> → <paramref name="to"/>; null when there is no such edge.</summary>
    public string? Example(string from, string to)
        => _edges.TryGetValue(from, out var targets) && targets.TryGetValue(to, out var example) ? example : null;

    /// <summary>Every strongly connected component of more than one node, with the edges between its members; empty when the graph is acyclic.</summary>
    public IReadOnlyList<DependencyCycle> Cycles()
    {
        var next = 0;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var lowLink = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var components = new List<List<string>>();

        foreach (var node in _edges.Keys)
        {
            if (!index.ContainsKey(node))
                Connect(node);
        }

        return components
            .Where(c => c.Count > 1)
            .Select(c => c.Order(StringComparer.Ordinal).ToList())
            .OrderBy(c => c[0], StringComparer.Ordinal)
            .Select(c => new DependencyCycle(c, [.. c.SelectMany(from => _edges[from].Where(e => c.Contains(e.Key)).Select(e => new DependencyEdge(from, e.Key, e.Value)))]))
            .ToList();

        void Connect(string node)
        {
            index[node] = lowLink[node] = next++;
            stack.Push(node);
            onStack.Add(node);
            foreach (var target in _edges[node].Keys)
            {
                if (!index.TryGetValue(target, out var targetIndex))
                {
                    Connect(target);
                    lowLink[node] = Math.Min(lowLink[node], lowLink[target]);
                }
                else if (onStack.Contains(target))
                {
                    lowLink[node] = Math.Min(lowLink[node], targetIndex);
                }
            }
            if (lowLink[node] != index[node])
                return;
            var component = new List<string>();
            string member;
            do
            {
                member = stack.Pop();
                onStack.Remove(member);
                component.Add(member);
            }
            while (member != node);
            components.Add(component);
        }
    }

    private SortedDictionary<string, string> Targets(string node)
    {
        if (!_edges.TryGetValue(node, out var targets))
            _edges[node] = targets = new SortedDictionary<string, string>(StringComparer.Ordinal);
        return targets;
    }
}

/// <summary>Nodes that all reach each other, and the edges between them.</summary>
internal sealed record DependencyCycle(IReadOnlyList<string> Nodes, IReadOnlyList<DependencyEdge> Edges)
{
    public override string ToString()
        => $"{string.Join(" <-> ", Nodes)}:" + string.Concat(Edges.Select(e => Environment.NewLine + "    " + e));
}

/// <summary>One edge and the example that explains it.</summary>
internal sealed record DependencyEdge(string From, string To, string Example)
{
    public override string ToString() => $"{From} -> {To} ({Example})";
}
