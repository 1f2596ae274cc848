namespace Synchro.Pipeline.Tests.Architecture;

/// <summary>
/// Namespaces only point down: no namespace of the library depends, directly or through others, on one that depends on
/// it. Read from the compiled assembly (<see cref="NamespaceDependencies"/>), so every use counts, not only the usings.
/// </summary>
public sealed class NamespaceLayeringTests
{
    private const string Root = NamespaceDependencies.Root;

    [Fact]
    public void The_library_has_no_namespace_cycle()
    {
        var cycles = NamespaceDependencies.Read(typeof(WalPipeline).Assembly.Location).Cycles();

        Assert.True(cycles.Count == 0,
            $"{cycles.Count} namespace cycle(s); each lists the edges between its namespaces, with one example type pair:"
            + string.Concat(cycles.Select(c => Environment.NewLine + "  " + c)));
    }

    [Fact]
    public void The_graph_holds_the_edges_the_library_is_known_to_have()
    {
        var graph = NamespaceDependencies.Read(typeof(WalPipeline).Assembly.Location);

        // A constructor parameter, a field reached in IL, and the nested namespace folded into its parent.
        Assert.NotNull(graph.Example($"{Root}.Replication", $"{Root}.Protocol"));
        Assert.NotNull(graph.Example($"{Root}.WalPipeline", $"{Root}.Replication"));
        Assert.NotNull(graph.Example($"{Root}.Hosting", $"{Root}.WalPipeline"));
        Assert.Contains($"{Root}.Protocol", graph.Nodes);
        Assert.True(graph.Edges.Count() > 30, string.Join(Environment.NewLine, graph.Edges));
        Assert.DoesNotContain(graph.Nodes, n => n.StartsWith($"{Root}.Protocol.", StringComparison.Ordinal) || n.StartsWith("System", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Synchro.Pipeline.Protocol.Messages", "InsertMessage", "Synchro.Pipeline.Protocol")]
    [InlineData("Synchro.Pipeline.Decoding.Spill", "SpillStore", "Synchro.Pipeline.Decoding")]
    [InlineData("Synchro.Pipeline.Buckets", "BucketAssignment", "Synchro.Pipeline.Buckets")]
    [InlineData("Synchro.Pipeline", "WalPipelineException", "Synchro.Pipeline.WalPipelineException")]
    [InlineData("Synchro.Pipeline", "Handler`1", "Synchro.Pipeline.Handler")]
    [InlineData("Microsoft.Extensions.DependencyInjection", "SynchroPipelineServiceCollectionExtensions", "Synchro.Pipeline.Hosting")]
    [InlineData("Synchro.PipelineX", "Other", null)]
    [InlineData("System.Text.RegularExpressions.Generated", "Utilities", null)]
    [InlineData("", "<Module>", null)]
    public void Types_map_to_their_namespace_under_the_root_or_to_themselves_in_it(string @namespace, string name, string? node)
        => Assert.Equal(node, NamespaceDependencies.NodeOf(@namespace, name));

    [Fact]
    public void The_cycle_finder_reports_each_cycle_with_the_edges_inside_it()
    {
        var graph = new DependencyGraph();
        graph.Add("A", "B", "a1 -> b1");
        graph.Add("B", "C", "b1 -> c1");
        graph.Add("C", "A", "c1 -> a2");
        graph.Add("C", "D", "c1 -> d1");
        graph.Add("D", "E", "d1 -> e1");
        graph.Add("E", "E", "e1 -> e2");
        graph.Add("F", "G", "f1 -> g1");
        graph.Add("G", "F", "g2 -> f1");
        graph.Add("G", "F", "g1 -> f1");

        var cycles = graph.Cycles();

        Assert.Equal(2, cycles.Count);
        Assert.Equal(["A", "B", "C"], cycles[0].Nodes);
        Assert.Equal(["A -> B (a1 -> b1)", "B -> C (b1 -> c1)", "C -> A (c1 -> a2)"], cycles[0].Edges.Select(e => e.ToString()));
        Assert.Equal(["F", "G"], cycles[1].Nodes);
        Assert.Equal(["F -> G (f1 -> g1)", "G -> F (g1 -> f1)"], cycles[1].Edges.Select(e => e.ToString()));
    }

    [Fact]
    public void The_cycle_finder_finds_none_in_a_layered_graph()
    {
        var graph = new DependencyGraph();
        graph.Add("Hosting", "Runtime", "x");
        graph.Add("Hosting", "Protocol", "x");
        graph.Add("Runtime", "Changelog", "x");
        graph.Add("Runtime", "Protocol", "x");
        graph.Add("Changelog", "Protocol", "x");
        graph.Add("Protocol", "Protocol", "a self-edge is no cycle");

        Assert.Empty(graph.Cycles());
        Assert.Equal(["Changelog", "Hosting", "Protocol", "Runtime"], graph.Nodes);
    }
}
