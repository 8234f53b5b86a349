namespace StableAlignment.Core.Sandbox;

/// <summary>The grid geometry: persona layouts, neighbourhoods and the seeded choice of peers.</summary>
internal static class SandboxWorld
{
    /// <summary>The persona of each cell (row-major), <see langword="null"/> for an empty cell.</summary>
    public static string?[] LayoutPersonas(SandboxOptions options)
    {
        int cells = options.GridSize * options.GridSize;
        var personas = new string?[cells];
        switch (options.Layout)
        {
            case PersonaLayout.AllAligned:
                Array.Fill(personas, Personas.Aligned);
                break;
            case PersonaLayout.AllMisaligned:
                Array.Fill(personas, Personas.Misaligned);
                break;
            case PersonaLayout.HalfAndHalf:
                for (int i = 0; i < cells; i++) personas[i] = i < cells / 2 ? Personas.Aligned : Personas.Misaligned;
                break;
            case PersonaLayout.RandomHalfAndHalf:
                var ids = Enumerable.Range(0, cells).ToList();
                var rng = new DeterministicRandom(StableHash.Combine((ulong)options.Seed, 0x1A7_0000L));
                rng.Shuffle(ids);
                for (int i = 0; i < cells; i++) personas[ids[i]] = i < cells / 2 ? Personas.Aligned : Personas.Misaligned;
                break;
            case PersonaLayout.Custom:
                for (int i = 0; i < cells; i++) personas[i] = options.CustomLayout![i];
                break;
            default:
                throw new ArgumentException($"Unknown persona layout {options.Layout}.", nameof(options));
        }
        return personas;
    }

    public static GridPosition PositionOf(int id, int gridSize) => new(id / gridSize, id % gridSize);

    /// <summary>For each active agent (by id), the active agents within <paramref name="radius"/> of it, itself excluded, in id order.</summary>
    public static Dictionary<int, int[]> Neighbourhoods(IReadOnlyList<int> activeIds, int gridSize, double radius)
    {
        var result = new Dictionary<int, int[]>(activeIds.Count);
        foreach (int a in activeIds)
        {
            var pa = PositionOf(a, gridSize);
            result[a] = [.. activeIds.Where(b => b != a && pa.DistanceTo(PositionOf(b, gridSize)) <= radius + 1e-9)];
        }
        return result;
    }

    /// <summary>
    /// The k peers of <paramref name="centre"/> in <paramref name="round"/>: drawn without replacement from its
    /// neighbourhood; then a <see cref="SandboxOptions.GlobalMixShare"/> of them is swapped for random active agents
    /// from anywhere (never the centre, never twice). Depends only on the seed, the round and the centre.
    /// </summary>
    public static int[] ChoosePeers(int centre, int round, IReadOnlyList<int> neighbours, IReadOnlyList<int> activeIds, SandboxOptions options)
    {
        var rng = new DeterministicRandom(StableHash.Combine((ulong)options.Seed, round, centre, 0x9EE2L));
        int k = Math.Min(options.PeersPerInteraction, neighbours.Count);
        var pool = neighbours.ToArray();
        for (int i = 0; i < k; i++)
        {
            int j = i + rng.Next(pool.Length - i);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        var peers = pool[..k];
        int swaps = (int)Math.Round(options.GlobalMixShare * k, MidpointRounding.AwayFromZero);
        if (swaps == 0) return peers;
        var candidates = activeIds.Where(id => id != centre && Array.IndexOf(peers, id) < 0).ToList();
        for (int s = 0; s < swaps && candidates.Count > 0; s++)
        {
            int slot = k - 1 - s;
            int pick = rng.Next(candidates.Count);
            peers[slot] = candidates[pick];
            candidates.RemoveAt(pick);
        }
        return peers;
    }
}
