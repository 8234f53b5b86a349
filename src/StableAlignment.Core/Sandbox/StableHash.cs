using System.Security.Cryptography;
using System.Text;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// Hashes and seeds that never change between library or runtime versions. <see cref="string.GetHashCode()"/>
/// is randomised per process and <see cref="Random"/>'s seeded sequence is an implementation detail, so
/// everything that must reproduce (schedules, offline answers, replay keys) goes through here.
/// </summary>
internal static class StableHash
{
    /// <summary>64-bit FNV-1a over the UTF-8 bytes of <paramref name="text"/>.</summary>
    public static ulong Of(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        return Mix(h);
    }

    /// <summary>Combines values into one well-mixed 64-bit seed.</summary>
    public static ulong Combine(ulong a, ulong b) => Mix(a ^ (Mix(b) + 0x9E3779B97F4A7C15UL + (a << 6) + (a >> 2)));

    /// <summary>Combines a seed with several integers (round, agent, ...).</summary>
    public static ulong Combine(ulong seed, params ReadOnlySpan<long> values)
    {
        ulong h = Mix(seed);
        foreach (long v in values) h = Combine(h, unchecked((ulong)v));
        return h;
    }

    /// <summary>The SplitMix64 finaliser.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Lower-case hex SHA-256 of the UTF-8 bytes of <paramref name="text"/>.</summary>
    public static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}

/// <summary>A SplitMix64 generator: tiny, fast and with a sequence fixed by this code, not by the runtime.</summary>
internal struct DeterministicRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return StableHash.Mix(_state);
    }

    /// <summary>A uniform integer in [0, <paramref name="maxExclusive"/>).</summary>
    public int Next(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        return (int)(NextUInt64() % (ulong)maxExclusive);
    }

    /// <summary>A uniform double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Picks an index with probability proportional to <paramref name="weights"/>.</summary>
    public int Pick(ReadOnlySpan<double> weights)
    {
        double total = 0;
        foreach (double w in weights) total += w;
        double u = NextDouble() * total;
        for (int i = 0; i < weights.Length; i++)
        {
            u -= weights[i];
            if (u < 0) return i;
        }
        return weights.Length - 1;
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
