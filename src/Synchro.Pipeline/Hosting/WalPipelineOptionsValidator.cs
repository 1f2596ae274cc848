using Microsoft.Extensions.Options;

namespace Synchro.Pipeline.Hosting;

/// <summary>Runs <see cref="WalPipelineOptions.Validate"/>'s checks; one failure per bad option.</summary>
internal sealed class WalPipelineOptionsValidator : IValidateOptions<WalPipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, WalPipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.FindProblems();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
