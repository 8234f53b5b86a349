using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

public class LayoutTests
{
    [Theory]
    [InlineData(PersonaLayout.AllAligned, 16, 0)]
    [InlineData(PersonaLayout.AllMisaligned, 0, 16)]
    [InlineData(PersonaLayout.HalfAndHalf, 8, 8)]
    [InlineData(PersonaLayout.RandomHalfAndHalf, 8, 8)]
    public void Layouts_have_the_right_persona_counts(PersonaLayout layout, int aligned, int misaligned)
    {
        var personas = SandboxWorld.LayoutPersonas(new SandboxOptions { GridSize = 4, Layout = layout });
        Assert.Equal(aligned, personas.Count(p => p == Personas.Aligned));
        Assert.Equal(misaligned, personas.Count(p => p == Personas.Misaligned));
    }

    [Fact]
    public void Half_and_half_splits_by_position_and_odd_grids_round_down()
    {
        var personas = SandboxWorld.LayoutPersonas(new SandboxOptions { GridSize = 3, Layout = PersonaLayout.HalfAndHalf });
        string[] expected = [.. Enumerable.Repeat(Personas.Aligned, 4), .. Enumerable.Repeat(Personas.Misaligned, 5)];
        Assert.Equal(expected, personas.Select(p => p!));
    }

    [Fact]
    public void Random_half_and_half_depends_on_the_seed_only()
    {
        string Layout(long seed) => string.Join(",", SandboxWorld.LayoutPersonas(new SandboxOptions { GridSize = 6, Seed = seed }));
        Assert.Equal(Layout(1), Layout(1));
        Assert.NotEqual(Layout(1), Layout(2));
        // Not simply the positional split.
        Assert.NotEqual(string.Join(",", SandboxWorld.LayoutPersonas(new SandboxOptions { GridSize = 6, Layout = PersonaLayout.HalfAndHalf })), Layout(1));
    }

    [Fact]
    public async Task Custom_layout_places_personas_and_leaves_empty_cells_inactive()
    {
        string?[] layout = [Personas.Aligned, null, Personas.Misaligned, null];
        await using var sandbox = SandboxTestKit.Offline(new SandboxOptions { GridSize = 2, Layout = PersonaLayout.Custom, CustomLayout = layout });
        Assert.Equal([0, 2], sandbox.Agents.Select(a => a.Id));
        Assert.Equal([Personas.Aligned, Personas.Misaligned], sandbox.Agents.Select(a => a.Persona));
        Assert.Equal(new GridPosition(1, 0), sandbox.Agents[1].Position);
    }

    [Theory]
    [InlineData("GridSize")]
    [InlineData("CustomLayout")]
    [InlineData("PeersPerInteraction")]
    [InlineData("MemoryDistanceThreshold")]
    [InlineData("GlobalMixShare")]
    public void Bad_options_are_named(string option)
    {
        var bad = option switch
        {
            "GridSize" => new SandboxOptions { GridSize = 0 },
            "CustomLayout" => new SandboxOptions { GridSize = 2, Layout = PersonaLayout.Custom, CustomLayout = ["aligned"] },
            "PeersPerInteraction" => new SandboxOptions { PeersPerInteraction = 0 },
            "MemoryDistanceThreshold" => new SandboxOptions { MemoryDistanceThreshold = -1 },
            _ => new SandboxOptions { GlobalMixShare = 1.5 },
        };
        var ex = Assert.Throws<ArgumentException>(bad.Validate);
        Assert.Contains(option, ex.Message, StringComparison.Ordinal);
    }
}
