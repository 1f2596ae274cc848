using Mono.Cecil;

namespace Synchro.Pipeline.Tests.Architecture;

/// <summary>
/// The namespace dependency graph of an assembly, read from its metadata and IL: an edge for every type a type names in
/// its signatures, attributes and method bodies.
/// </summary>
/// <remarks>
/// Nodes: a type in <c>Synchro.Pipeline.X</c> or below (<c>Synchro.Pipeline.X.Y</c>) is part of <c>Synchro.Pipeline.X</c>;
/// a type of the root namespace is a node of its own (the public entry types and the exceptions every layer uses live
/// there); nested and compiler-generated types count as their outermost declaring type; the
/// <c>Microsoft.Extensions.DependencyInjection</c> extension class is part of <c>Synchro.Pipeline.Hosting</c>. Types
/// of other assemblies, and the compiler's own top-level types, are not nodes. The compiler inlines constants, so a use
/// of a <c>const</c> alone (<c>HeartbeatMessage.Prefix</c> in the heartbeat emitter) leaves no edge.
/// </remarks>
internal sealed class NamespaceDependencies
{
    public const string Root = "Synchro.Pipeline";

    // Where the library's AddSynchroPipeline extension class lives, as every AddXxx of Microsoft.Extensions does.
    private const string DependencyInjectionNamespace = "Microsoft.Extensions.DependencyInjection";

    private readonly DependencyGraph _graph = new();

    private NamespaceDependencies()
    {
    }

    /// <summary>Reads the graph of the assembly at <paramref name="assemblyPath"/>; its dependencies are looked up beside it and in the runtime's directory.</summary>
    public static DependencyGraph Read(string assemblyPath)
    {
        using var resolver = new DefaultAssemblyResolver();
        resolver.AddSearchDirectory(Path.GetDirectoryName(assemblyPath)!);
        resolver.AddSearchDirectory(Path.GetDirectoryName(typeof(object).Assembly.Location)!);
        using var module = ModuleDefinition.ReadModule(assemblyPath, new ReaderParameters { AssemblyResolver = resolver });
        var reader = new NamespaceDependencies();
        foreach (var type in module.GetTypes())
        {
            if (NodeOf(type) is { } node)
                reader.VisitType(type, new Source(node, DisplayName(type)));
        }
        return reader._graph;
    }

    /// <summary>The node of a top-level type of the library by its namespace and name; null when it is not one.</summary>
    public static string? NodeOf(string @namespace, string name)
    {
        if (@namespace == Root)
            return $"{Root}.{WithoutArity(name)}";
        if (@namespace.StartsWith(Root + ".", StringComparison.Ordinal))
        {
            var layer = @namespace[(Root.Length + 1)..];
            var dot = layer.IndexOf('.', StringComparison.Ordinal);
            return $"{Root}.{(dot < 0 ? layer : layer[..dot])}";
        }
        return @namespace == DependencyInjectionNamespace ? $"{Root}.Hosting" : null;
    }

    private static string? NodeOf(TypeReference type)
    {
        var outermost = Outermost(type);
        // Only the library's own types: a reference to another assembly's type has that assembly as its scope.
        return outermost.Scope is ModuleDefinition ? NodeOf(outermost.Namespace, outermost.Name) : null;
    }

    private static TypeReference Outermost(TypeReference type)
    {
        while (type.DeclaringType is { } declaring)
            type = declaring;
        return type;
    }

    private static string DisplayName(TypeReference type) => WithoutArity(Outermost(type).Name);

    private static string WithoutArity(string name) => name.IndexOf('`', StringComparison.Ordinal) is var tick and >= 0 ? name[..tick] : name;

    private void VisitType(TypeDefinition type, Source source)
    {
        VisitReference(type.BaseType, source);
        foreach (var implemented in type.Interfaces)
        {
            VisitReference(implemented.InterfaceType, source);
            VisitAttributes(implemented, source);
        }
        VisitGenericParameters(type, source);
        VisitAttributes(type, source);
        foreach (var field in type.Fields)
        {
            VisitReference(field.FieldType, source);
            VisitAttributes(field, source);
        }
        foreach (var property in type.Properties)
        {
            VisitReference(property.PropertyType, source);
            VisitAttributes(property, source);
        }
        foreach (var @event in type.Events)
        {
            VisitReference(@event.EventType, source);
            VisitAttributes(@event, source);
        }
        foreach (var method in type.Methods)
            VisitMethod(method, source);
    }

    private void VisitMethod(MethodDefinition method, Source source)
    {
        VisitSignature(method, source);
        VisitAttributes(method, source);
        VisitAttributes(method.MethodReturnType, source);
        VisitGenericParameters(method, source);
        foreach (var parameter in method.Parameters)
            VisitAttributes(parameter, source);
        foreach (var overridden in method.Overrides)
            VisitMember(overridden, source);
        if (!method.HasBody)
            return;

        foreach (var variable in method.Body.Variables)
            VisitReference(variable.VariableType, source);
        foreach (var handler in method.Body.ExceptionHandlers)
            VisitReference(handler.CatchType, source);
        foreach (var instruction in method.Body.Instructions)
        {
            switch (instruction.Operand)
            {
                case TypeReference type:
                    VisitReference(type, source);
                    break;
                case MemberReference member:
                    VisitMember(member, source);
                    break;
                case CallSite callSite:
                    VisitSignature(callSite, source);
                    break;
            }
        }
    }

    private void VisitMember(MemberReference member, Source source)
    {
        switch (member)
        {
            case MethodReference method:
                VisitReference(method.DeclaringType, source);
                VisitSignature(method, source);
                if (method is GenericInstanceMethod instance)
                {
                    foreach (var argument in instance.GenericArguments)
                        VisitReference(argument, source);
                }
                break;
            case FieldReference field:
                VisitReference(field.DeclaringType, source);
                VisitReference(field.FieldType, source);
                break;
            default:
                VisitReference(member.DeclaringType, source);
                break;
        }
    }

    private void VisitSignature(IMethodSignature signature, Source source)
    {
        VisitReference(signature.ReturnType, source);
        foreach (var parameter in signature.Parameters)
            VisitReference(parameter.ParameterType, source);
    }

    private void VisitGenericParameters(IGenericParameterProvider provider, Source source)
    {
        foreach (var parameter in provider.GenericParameters)
        {
            VisitAttributes(parameter, source);
            foreach (var constraint in parameter.Constraints)
                VisitReference(constraint.ConstraintType, source);
        }
    }

    private void VisitAttributes(ICustomAttributeProvider provider, Source source)
    {
        foreach (var attribute in provider.CustomAttributes)
        {
            VisitReference(attribute.AttributeType, source);
            // typeof(...) arguments name types too.
            foreach (var argument in attribute.ConstructorArguments)
                VisitArgument(argument, source);
            foreach (var named in attribute.Fields.Concat(attribute.Properties))
                VisitArgument(named.Argument, source);
        }
    }

    private void VisitArgument(CustomAttributeArgument argument, Source source)
    {
        switch (argument.Value)
        {
            case TypeReference type:
                VisitReference(type, source);
                break;
            case CustomAttributeArgument boxed:
                VisitArgument(boxed, source);
                break;
            case CustomAttributeArgument[] array:
                foreach (var element in array)
                    VisitArgument(element, source);
                break;
        }
    }

    private void VisitReference(TypeReference? type, Source source)
    {
        switch (type)
        {
            case null or GenericParameter:
                return;
            case GenericInstanceType instance:
                VisitReference(instance.ElementType, source);
                foreach (var argument in instance.GenericArguments)
                    VisitReference(argument, source);
                return;
            case FunctionPointerType pointer:
                VisitSignature(pointer, source);
                return;
            case IModifierType modified:
                VisitReference(modified.ModifierType, source);
                VisitReference(modified.ElementType, source);
                return;
            case TypeSpecification specification:
                // Arrays, by-refs, pointers, pinned types.
                VisitReference(specification.ElementType, source);
                return;
        }
        if (NodeOf(type) is { } target)
            _graph.Add(source.Node, target, $"{source.TypeName} -> {DisplayName(type)}");
    }

    /// <summary>The node and the outermost type whose members are being read.</summary>
    private readonly record struct Source(string Node, string TypeName);
}
