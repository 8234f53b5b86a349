using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

public class GridTests
{
    /// <summary>Independent oracle: integer squared distances, no floating point.</summary>
    private static int[] OracleNeighbours(int id, int n, double radius, HashSet<int> active)
    {
        var result = new List<int>();
        int r0 = id / n, c0 = id % n;
        for (int other = 0; other < n * n; other++)
        {
            if (other == id || !active.Contains(other)) continue;
            int dr = other / n - r0, dc = other % n - c0;
            if (dr * dr + dc * dc <= radius * radius) result.Add(other);
        }
        return [.. result];
    }

    [Theory]
    [InlineData(1, 0.5)]
    [InlineData(3, 1.0)]
    [InlineData(4, 1.5)]
    [InlineData(5, 2.0)]
    [InlineData(7, 3.5)]
    [InlineData(10, 5.0)]
    [InlineData(10, 1.0)]
    public void Neighbourhoods_match_the_distance_oracle(int n, double radius)
    {
        var ids = Enumerable.Range(0, n * n).ToArray();
        var hoods = SandboxWorld.Neighbourhoods(ids, n, radius);
        foreach (int id in ids) Assert.Equal(OracleNeighbours(id, n, radius, ids.ToHashSet()), hoods[id]);
    }

    [Fact]
    public void Radius_one_gives_the_four_neighbourhood_and_corners_have_two()
    {
        var hoods = SandboxWorld.Neighbourhoods(Enumerable.Range(0, 25).ToArray(), 5, 1.0);
        Assert.Equal([7, 11, 13, 17], hoods[12]);
        Assert.Equal([1, 5], hoods[0]);
    }

    [Fact]
    public void Default_radius_is_half_the_grid_and_empty_cells_are_never_neighbours()
    {
        var layout = Enumerable.Repeat<string?>(Personas.Aligned, 16).ToArray();
        layout[5] = null;
        var options = new SandboxOptions { GridSize = 4, Layout = PersonaLayout.Custom, CustomLayout = layout };
        Assert.Equal(2.0, options.EffectiveRadius);
        var active = Enumerable.Range(0, 16).Where(i => i != 5).ToArray();
        var hoods = SandboxWorld.Neighbourhoods(active, 4, options.EffectiveRadius);
        Assert.DoesNotContain(5, hoods.Keys);
        Assert.All(hoods.Values, h => Assert.DoesNotContain(5, h));
        foreach (int id in active) Assert.Equal(OracleNeighbours(id, 4, 2.0, active.ToHashSet()), hoods[id]);
    }

    [Fact]
    public void Peers_are_distinct_local_and_reproducible()
    {
        Prop.ForAll(Gen.Choose(2, 9).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), Gen.Choose(1, 6).ToArbitrary(), (n, seed, k) =>
        {
            var options = new SandboxOptions { GridSize = n, Seed = seed, PeersPerInteraction = k };
            var ids = Enumerable.Range(0, n * n).ToArray();
            var hoods = SandboxWorld.Neighbourhoods(ids, n, options.EffectiveRadius);
            foreach (int centre in ids)
            {
                var peers = SandboxWorld.ChoosePeers(centre, 3, hoods[centre], ids, options);
                if (peers.Length != Math.Min(k, hoods[centre].Length)) return false;
                if (peers.Distinct().Count() != peers.Length || peers.Contains(centre)) return false;
                if (!peers.All(p => hoods[centre].Contains(p))) return false;
                if (!peers.SequenceEqual(SandboxWorld.ChoosePeers(centre, 3, hoods[centre], ids, options))) return false;
            }
            return true;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Peers_differ_between_rounds()
    {
        var options = new SandboxOptions { GridSize = 10, PeersPerInteraction = 4 };
        var ids = Enumerable.Range(0, 100).ToArray();
        var hoods = SandboxWorld.Neighbourhoods(ids, 10, options.EffectiveRadius);
        var draws = Enumerable.Range(0, 20).Select(r => string.Join(",", SandboxWorld.ChoosePeers(55, r, hoods[55], ids, options))).ToHashSet();
        Assert.True(draws.Count > 15, $"only {draws.Count} distinct peer sets in 20 rounds");
    }

    [Fact]
    public void Global_variant_swaps_the_configured_share_for_agents_from_anywhere()
    {
        var options = new SandboxOptions { GridSize = 10, PeersPerInteraction = 4, NeighbourhoodRadius = 1.0, GlobalMixShare = 0.5 };
        var ids = Enumerable.Range(0, 100).ToArray();
        var hoods = SandboxWorld.Neighbourhoods(ids, 10, 1.0);
        int outside = 0;
        for (int round = 0; round < 50; round++)
        {
            var peers = SandboxWorld.ChoosePeers(55, round, hoods[55], ids, options);
            Assert.Equal(4, peers.Length);
            Assert.Equal(4, peers.Distinct().Count());
            Assert.DoesNotContain(55, peers);
            // Two local (first two slots) always from the neighbourhood.
            Assert.All(peers.Take(2), p => Assert.Contains(p, hoods[55]));
            outside += peers.Count(p => !hoods[55].Contains(p));
        }
        // 2 swapped slots per round, 96 non-local candidates vs 2 possible local leftovers: nearly all swaps go outside.
        Assert.InRange(outside, 90, 100);
    }
}
