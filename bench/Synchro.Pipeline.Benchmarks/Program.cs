using BenchmarkDotNet.Running;

namespace Synchro.Pipeline.Benchmarks;

public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
