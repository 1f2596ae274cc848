using Mono.Cecil;
using Mono.Cecil.Cil;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Tests.Architecture;

/// <summary>
/// Every connection the library opens comes from <see cref="PostgresConnections"/>, so that
/// <see cref="WalPipelineOptions.ConfigureDataSource"/> and <see cref="WalPipelineOptions.PasswordProvider"/> reach it: no other
/// type of the library creates an Npgsql connection, data source or replication connection. Read from the compiled IL,
/// lambdas and async state machines counted as the type that declares them.
/// </summary>
public sealed class ConnectionFactoryTests
{
    // What opens a connection from a connection string, around the factory's hooks.
    private static readonly string[] s_forbiddenConstructors =
    [
        "Npgsql.NpgsqlConnection",
        "Npgsql.NpgsqlDataSourceBuilder",
        "Npgsql.NpgsqlSlimDataSourceBuilder",
        "Npgsql.Replication.LogicalReplicationConnection",
        "Npgsql.Replication.PhysicalReplicationConnection",
    ];

    [Fact]
    public void Only_the_connection_factory_creates_connections_and_data_sources()
    {
        var found = Uses(typeof(WalPipeline).Assembly.Location);

        var outside = found.Where(u => u.Type != typeof(PostgresConnections).FullName).ToList();
        Assert.True(outside.Count == 0,
            "Connections made around PostgresConnections (the hooks would miss them):" + string.Concat(outside.Select(u => Environment.NewLine + "  " + u)));
        // The reader sees what it must: the factory's own uses are found.
        Assert.Contains(found, u => u.Target.StartsWith("new Npgsql.NpgsqlDataSourceBuilder", StringComparison.Ordinal));
        Assert.Contains(found, u => u.Target.StartsWith("new Npgsql.Replication.LogicalReplicationConnection", StringComparison.Ordinal));
    }

    private static List<Use> Uses(string assemblyPath)
    {
        using var resolver = new DefaultAssemblyResolver();
        resolver.AddSearchDirectory(Path.GetDirectoryName(assemblyPath)!);
        using var module = ModuleDefinition.ReadModule(assemblyPath, new ReaderParameters { AssemblyResolver = resolver });
        var uses = new List<Use>();
        foreach (var type in module.GetTypes())
        {
            foreach (var method in type.Methods.Where(m => m.HasBody))
            {
                foreach (var instruction in method.Body.Instructions)
                {
                    if (instruction.Operand is not MethodReference called)
                        continue;
                    var declaring = called.DeclaringType.FullName;
                    if (instruction.OpCode == OpCodes.Newobj && s_forbiddenConstructors.Contains(declaring))
                        uses.Add(new Use(Outermost(type).FullName, method.Name, $"new {declaring}"));
                    else if ((declaring, called.Name) is ("Npgsql.NpgsqlDataSource", "Create") or ("Npgsql.NpgsqlConnection", "CloneWith"))
                        uses.Add(new Use(Outermost(type).FullName, method.Name, $"{declaring}.{called.Name}"));
                }
            }
        }
        return uses;
    }

    private static TypeDefinition Outermost(TypeDefinition type)
    {
        while (type.DeclaringType is { } outer)
            type = outer;
        return type;
    }

    private sealed record Use(string Type, string Method, string Target)
    {
        public override string ToString() => $"{Type}.{Method}: {Target}";
    }
}
