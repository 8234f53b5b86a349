using System.Reflection;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

public sealed class SandboxOptionsTests
{
    /// <summary>A valid value other than the default of every settable option; a new option without a case fails here.</summary>
    private static object? Changed(PropertyInfo p, SandboxOptions o) => p.Name switch
    {
        nameof(SandboxOptions.Layout) => PersonaLayout.HalfAndHalf,
        nameof(SandboxOptions.CustomLayout) => null, // only read with Layout = Custom; covered below
        nameof(SandboxOptions.PersonaDescriptions) => new Dictionary<string, string>(o.PersonaDescriptions) { [Personas.Aligned] = "kind" },
        nameof(SandboxOptions.NeighbourhoodRadius) => 1.5,
        nameof(SandboxOptions.GlobalMixShare) => 0.25,
        nameof(SandboxOptions.MemoryDistanceThreshold) => 0.5,
        nameof(SandboxOptions.Temperature) => 0.5f,
        nameof(SandboxOptions.Prompts) => o.Prompts with { Draft = o.Prompts.Draft + " " },
        _ when p.PropertyType == typeof(int) => (int)p.GetValue(o)! + 1,
        _ when p.PropertyType == typeof(long) => (long)p.GetValue(o)! + 1,
        _ => throw new InvalidOperationException($"SandboxOptions.{p.Name} ({p.PropertyType.Name}) has no case: add one, and add it to the fingerprint."),
    };

    [Fact]
    public void Every_option_is_in_the_logs_fingerprint()
    {
        var baseline = new SandboxOptions { GridSize = 4 };
        string fingerprint = baseline.Fingerprint(["q"]);
        var settable = typeof(SandboxOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).ToList();
        Assert.True(settable.Count >= 17, $"{settable.Count} options");
        foreach (var p in settable.Where(p => p.Name != nameof(SandboxOptions.CustomLayout)))
        {
            var changed = baseline with { };
            p.SetValue(changed, Changed(p, baseline));
            changed.Validate();
            Assert.True(changed.Fingerprint(["q"]) != fingerprint, $"changing {p.Name} leaves the fingerprint as it was");
        }
        var custom = baseline with { Layout = PersonaLayout.Custom, CustomLayout = [.. Enumerable.Repeat<string?>(Personas.Aligned, 16)] };
        var otherCustom = custom with { CustomLayout = [.. Enumerable.Repeat<string?>(Personas.Aligned, 15), null] };
        Assert.NotEqual(custom.Fingerprint(["q"]), otherCustom.Fingerprint(["q"]));
        Assert.NotEqual(fingerprint, baseline.Fingerprint(["other question"]));
    }
}
