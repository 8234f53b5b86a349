using System.Security.Cryptography;
using System.Text;

namespace StableAlignment.Core.Evaluation;

/// <summary>
/// CPython's <c>random.Random</c> (MT19937) seeded from a string, far enough to reproduce <c>shuffle</c>.
/// </summary>
/// <remarks>
/// lm-evaluation-harness orders the two ETHICS utilitarianism scenarios with <c>random.Random(activity).shuffle</c>;
/// reproducing it bit for bit gives the same prompts, hence comparable scores.
/// </remarks>
internal sealed class PythonRandom
{
    private const int N = 624;
    private const int M = 397;
    private readonly uint[] _mt = new uint[N];
    private int _index = N + 1;

    /// <summary>Seeds as <c>random.seed(text)</c> (version 2): the integer of UTF-8 bytes + their SHA-512, big-endian.</summary>
    public PythonRandom(string seed)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(seed);
        byte[] big = [.. utf8, .. SHA512.HashData(utf8)];
        // init_by_array takes the absolute value's 32-bit words, least significant first, high zero words dropped.
        var key = new List<uint>();
        for (int end = big.Length; end > 0; end -= 4)
        {
            uint word = 0;
            for (int b = Math.Max(0, end - 4); b < end; b++)
            {
                word = (word << 8) | big[b];
            }
            key.Add(word);
        }
        while (key.Count > 1 && key[^1] == 0)
        {
            key.RemoveAt(key.Count - 1);
        }
        InitByArray(key);
    }

    private void InitGenrand(uint s)
    {
        _mt[0] = s;
        for (int i = 1; i < N; i++)
        {
            _mt[i] = unchecked((1812433253u * (_mt[i - 1] ^ (_mt[i - 1] >> 30))) + (uint)i);
        }
        _index = N;
    }

    private void InitByArray(List<uint> key)
    {
        InitGenrand(19650218u);
        int i = 1, j = 0;
        for (int k = Math.Max(N, key.Count); k > 0; k--)
        {
            _mt[i] = unchecked((_mt[i] ^ ((_mt[i - 1] ^ (_mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint)j);
            i++;
            j++;
            if (i >= N)
            {
                _mt[0] = _mt[N - 1];
                i = 1;
            }
            if (j >= key.Count)
            {
                j = 0;
            }
        }
        for (int k = N - 1; k > 0; k--)
        {
            _mt[i] = unchecked((_mt[i] ^ ((_mt[i - 1] ^ (_mt[i - 1] >> 30)) * 1566083941u)) - (uint)i);
            i++;
            if (i >= N)
            {
                _mt[0] = _mt[N - 1];
                i = 1;
            }
        }
        _mt[0] = 0x80000000u;
    }

    public uint NextUInt32()
    {
        if (_index >= N)
        {
            for (int kk = 0; kk < N; kk++)
            {
                uint y = (_mt[kk] & 0x80000000u) | (_mt[(kk + 1) % N] & 0x7fffffffu);
                _mt[kk] = _mt[(kk + M) % N] ^ (y >> 1) ^ ((y & 1u) != 0 ? 0x9908b0dfu : 0u);
            }
            _index = 0;
        }
        uint x = _mt[_index++];
        x ^= x >> 11;
        x ^= (x << 7) & 0x9d2c5680u;
        x ^= (x << 15) & 0xefc60000u;
        x ^= x >> 18;
        return x;
    }

    /// <summary><c>_randbelow(n)</c> by rejection sampling on <c>getrandbits(n.bit_length())</c>, for n up to 2^31.</summary>
    public int RandBelow(int n)
    {
        int bits = 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)n);
        uint r;
        do
        {
            r = NextUInt32() >> (32 - bits);
        }
        while (r >= (uint)n);
        return (int)r;
    }

    /// <summary><c>random.shuffle</c> (Fisher-Yates from the end).</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = RandBelow(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
