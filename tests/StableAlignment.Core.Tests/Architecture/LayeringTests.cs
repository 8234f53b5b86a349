using System.Reflection;
using NetArchTest.Rules;
using StableAlignment.Core.Experiment;

namespace StableAlignment.Core.Tests.Architecture;

/// <summary>
/// The library's namespaces depend on each other in one direction only. The table below is the allowed direction,
/// bottom first; a dependency outside it fails, and the table itself must be acyclic, so no cycle can creep in.
/// </summary>
public sealed class LayeringTests
{
    private const string Root = "StableAlignment.Core";

    /// <summary>Each namespace (under <see cref="Root"/>) and the namespaces it may use.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Allowed = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        ["Interop.Cuda"] = [],
        ["Serialization"] = [],
        ["ModelCalls"] = ["Serialization"],
        ["Evaluation"] = ["Serialization"],
        ["Sandbox"] = ["ModelCalls", "Serialization"],
        ["Models"] = ["Evaluation"],
        ["ChatClients"] = ["ModelCalls", "Sandbox", "Evaluation", "Models"],
        ["Data"] = ["Sandbox", "Models", "Serialization"],
        ["Training"] = ["Data", "Models", "Evaluation", "Interop.Cuda"],
        ["Experiment"] = ["Interop.Cuda", "Serialization", "ModelCalls", "Evaluation", "Sandbox", "Models", "ChatClients", "Data", "Training"],
    };

    private static readonly Assembly Core = typeof(StableAlignmentExperiment).Assembly;

    public static TheoryData<string> Namespaces() => [.. Allowed.Keys];

    [Theory]
    [MemberData(nameof(Namespaces))]
    public void A_namespace_uses_only_the_namespaces_below_it(string name)
    {
        var forbidden = Allowed.Keys.Where(other => other != name && !Allowed[name].Contains(other)).Select(other => $"{Root}.{other}").ToArray();
        var result = Types.InAssembly(Core).That().ResideInNamespaceMatching($"^{Root}.{name}$".Replace(".", "\\.", StringComparison.Ordinal))
            .ShouldNot().HaveDependencyOnAny(forbidden).GetResult();
        Assert.True(result.IsSuccessful,
            $"{Root}.{name} may use only {string.Join(", ", Allowed[name].DefaultIfEmpty("nothing else in the library"))}; these types use more: " +
            string.Join(", ", result.FailingTypeNames ?? []));
    }

    [Fact]
    public void Every_namespace_of_the_library_has_its_place_in_the_table()
    {
        var namespaces = Core.GetTypes().Select(t => t.Namespace).OfType<string>()
            .Where(n => n.StartsWith(Root, StringComparison.Ordinal) && !n.StartsWith("System", StringComparison.Ordinal))
            .Select(n => n == Root ? "" : n[(Root.Length + 1)..]).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Allowed.Keys.Order(StringComparer.Ordinal), namespaces);
    }

    [Fact]
    public void The_allowed_direction_has_no_cycle()
    {
        // Depth-first search over the table: a namespace met again on its own path is a cycle.
        var state = Allowed.Keys.ToDictionary(k => k, _ => 0, StringComparer.Ordinal);
        void Visit(string n, List<string> path)
        {
            if (state[n] == 2) return;
            Assert.True(state[n] == 0, "cycle: " + string.Join(" -> ", path.Append(n)));
            state[n] = 1;
            foreach (var m in Allowed[n]) Visit(m, [.. path, n]);
            state[n] = 2;
        }
        foreach (var n in Allowed.Keys) Visit(n, []);
    }

    [Fact]
    public void The_plugins_use_the_core_and_the_core_knows_no_plugin()
    {
        var plugins = new[]
        {
            typeof(StableAlignment.Embeddings.MiniLM.MiniLmEmbeddingGenerator).Assembly, typeof(StableAlignment.Plots.ExperimentPlots).Assembly,
            typeof(StableAlignment.Sandbox.Orleans.OrleansSandboxFactory).Assembly,
        };
        Assert.All(plugins, p => Assert.DoesNotContain(Core.GetReferencedAssemblies(), r => r.Name == p.GetName().Name));
        string[] heavy = ["SentenceTransformers", "ScottPlot", "SkiaSharp", "Orleans", "Npgsql"];
        Assert.DoesNotContain(Core.GetReferencedAssemblies(), r => heavy.Any(h => r.Name!.StartsWith(h, StringComparison.Ordinal)));
    }
}
