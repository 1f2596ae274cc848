namespace Synchro.Pipeline.Cli.Output;

/// <summary>What a piece of output means, shown as a colour on a terminal that takes colours.</summary>
internal enum Tone
{
    /// <summary>No emphasis.</summary>
    Plain,

    /// <summary>All is well (green).</summary>
    Good,

    /// <summary>Works, but look at it (yellow).</summary>
    Warning,

    /// <summary>Broken (red).</summary>
    Bad,

    /// <summary>Secondary detail (grey).</summary>
    Dim,

    /// <summary>A heading (bold).</summary>
    Strong,
}
