using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.Idle;
using Synchro.Pipeline.LoadHarness.SteadyState;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>The machine the run measured.</summary>
internal sealed record MachineFacts(int Cores, string ServerVersion, string OperatingSystem, string Runtime, string Command);

/// <summary>One row of issue 5's goal table; <see cref="Met"/> is null when the run did not measure it.</summary>
internal sealed record GoalRow(string Number, string Figure, string Goal, string Measured, bool? Met);

/// <summary>Everything one harness run measured; serialised as <c>load-harness.json</c>.</summary>
internal sealed record HarnessReport
{
    public required DateTimeOffset StartedAt { get; init; }
    public required MachineFacts Machine { get; init; }
    public required HarnessOptions Options { get; init; }
    public required BacklogInfo Backlog { get; init; }
    public required IReadOnlyList<ContenderResult> Contenders { get; init; }
    public SteadyStateResult? SteadyState { get; init; }

    /// <summary>Ours end to end on one large transaction; null when not run.</summary>
    public ContenderResult? BigTransaction { get; init; }

    /// <summary>The pipeline running with nothing else writing; null when not run.</summary>
    public IdleResult? Idle { get; init; }
    public IReadOnlyList<GoalRow> Goals { get; init; } = [];

    /// <summary>Each contender's changes/s divided by pg_recvlogical's in the same run.</summary>
    public IReadOnlyDictionary<string, double> ChangesPerSecondVsPgRecvLogical =>
        Find(ContenderNames.PgRecvLogical)?.ChangesPerSecond is { } ceiling
            ? Contenders.Where(c => c.ChangesPerSecond is not null).ToDictionary(c => c.Name, c => c.ChangesPerSecond!.Value / ceiling)
            : new Dictionary<string, double>();

    public bool AllSucceeded => Contenders.All(c => c.Succeeded) && SteadyState?.Error is null && BigTransaction?.Succeeded != false && Idle?.Error is null;

    public ContenderResult? Find(string name) => Contenders.FirstOrDefault(c => c.Name == name && c.Succeeded);
}
