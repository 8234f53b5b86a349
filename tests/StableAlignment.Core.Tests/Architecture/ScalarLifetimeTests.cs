using Mono.Cecil;
using Mono.Cecil.Cil;
using StableAlignment.Core.Experiment;

namespace StableAlignment.Core.Tests.Architecture;

/// <summary>
/// The library hands libtorch no <c>TorchSharp.Scalar</c> that may be collected during the call that reads it (see
/// <c>HeldScalars</c> for why). Read from the compiled library's IL: a number converted to a Scalar at the call, a
/// tensor operator with a number operand, and the TorchSharp members known to make an alpha of 1 inline
/// (<c>+</c>, and <c>add</c> or <c>add_</c> without an alpha) all fail it.
/// </summary>
public sealed class ScalarLifetimeTests
{
    private const string TensorType = "TorchSharp.torch/Tensor";

    private static readonly HashSet<string> Numbers = ["System.Byte", "System.Int16", "System.Int32", "System.Int64", "System.Single", "System.Double"];

    /// <summary>Why <paramref name="callee"/> makes a temporary Scalar, or null when it does not.</summary>
    internal static string? InlineScalar(MethodReference callee)
    {
        var type = callee.DeclaringType.FullName;
        if (type == "TorchSharp.Scalar" && callee.Name == "op_Implicit") return "converts a number to a Scalar inline";
        if (type != TensorType) return null;
        if (callee.Name == "op_Addition") return "adds tensors with TorchSharp's inline alpha of 1";
        if (callee.Name is "add" or "add_" && callee.Parameters.Count == 1) return $"calls {callee.Name} without an alpha, which TorchSharp makes inline";
        if (callee.Name.StartsWith("op_", StringComparison.Ordinal) && callee.Parameters.Any(p => Numbers.Contains(p.ParameterType.FullName)))
            return $"applies {callee.Name} to a number, which TorchSharp converts inline";
        return null;
    }

    /// <summary>Each call in <paramref name="assemblyPath"/> that makes a temporary Scalar, as "Type.Method: why".</summary>
    internal static IReadOnlyList<string> InlineScalarCalls(string assemblyPath)
    {
        using var assembly = AssemblyDefinition.ReadAssembly(assemblyPath);
        return [.. from type in assembly.MainModule.GetTypes()
                   from method in type.Methods
                   where method.HasBody
                   from instruction in method.Body.Instructions
                   where instruction.OpCode == OpCodes.Call || instruction.OpCode == OpCodes.Callvirt
                   let why = instruction.Operand is MethodReference callee ? InlineScalar(callee) : null
                   where why is not null
                   select $"{type.FullName}.{method.Name}: {why}"];
    }

    [Fact]
    public void The_library_makes_no_temporary_scalar_for_libtorch()
    {
        var offenders = InlineScalarCalls(typeof(StableAlignmentExperiment).Assembly.Location);
        Assert.True(offenders.Count == 0, "Hold these scalars in HeldScalars or a using local:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void The_rule_finds_each_kind_of_temporary_scalar_in_this_assembly()
    {
        // Compiled into the test assembly, so the rule is shown to see what it forbids.
        var found = InlineScalarCalls(typeof(ScalarLifetimeTests).Assembly.Location).Where(f => f.Contains(nameof(TemporaryScalars), StringComparison.Ordinal)).ToList();
        Assert.Contains(found, f => f.EndsWith("converts a number to a Scalar inline", StringComparison.Ordinal));
        Assert.Contains(found, f => f.EndsWith("adds tensors with TorchSharp's inline alpha of 1", StringComparison.Ordinal));
        Assert.Contains(found, f => f.EndsWith("calls add_ without an alpha, which TorchSharp makes inline", StringComparison.Ordinal));
        Assert.Contains(found, f => f.EndsWith("applies op_Multiply to a number, which TorchSharp converts inline", StringComparison.Ordinal));
        Assert.Equal(4, found.Count);
    }

    /// <summary>One call of each kind the rule forbids; never run.</summary>
    private static class TemporaryScalars
    {
        public static void Each(TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b)
        {
            a.fill_(1);
            _ = a + b;
            a.add_(b);
            _ = a * 2.0;
        }
    }
}
