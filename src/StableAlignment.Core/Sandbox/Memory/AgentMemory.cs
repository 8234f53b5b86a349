using System.Numerics.Tensors;

namespace StableAlignment.Core.Sandbox;

/// <summary>One remembered question-answer pair.</summary>
/// <param name="Question">The question.</param>
/// <param name="Answer">The answer the agent gave (its revised answer) or was seeded with.</param>
/// <param name="Round">The round it was stored in; -1 for the persona-matched seed.</param>
public sealed record MemoryEntry(string Question, string Answer, int Round)
{
    internal float[] Embedding { get; init; } = [];
}

/// <summary>
/// An agent's memory: question-answer pairs with question embeddings, retrieved by cosine distance (spec §1).
/// Entries carry the round they were stored in, so a peer that reads this memory while the owner has already moved
/// on to a later round sees exactly what it would have seen in a strictly round-by-round run.
/// </summary>
public sealed class AgentMemory
{
    private readonly List<MemoryEntry> _entries = [];
    private readonly Lock _lock = new();

    internal AgentMemory() { }

    /// <summary>Number of stored pairs.</summary>
    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>A copy of the stored pairs, in the order they were stored.</summary>
    public IReadOnlyList<MemoryEntry> Snapshot()
    {
        lock (_lock) return [.. _entries];
    }

    internal void Clear()
    {
        lock (_lock) _entries.Clear();
    }

    internal void Add(MemoryEntry entry)
    {
        lock (_lock) _entries.Add(entry);
    }

    /// <summary>Forgets every entry stored in <paramref name="round"/> or later (an interaction that is being redone).</summary>
    internal void ForgetFrom(int round)
    {
        lock (_lock) _entries.RemoveAll(e => e.Round >= round);
    }

    /// <summary>Whether <paramref name="question"/> was stored before <paramref name="beforeRound"/>.</summary>
    internal bool Contains(string question, int beforeRound)
    {
        lock (_lock)
        {
            foreach (var e in _entries)
            {
                if (e.Round < beforeRound && string.Equals(e.Question, question, StringComparison.Ordinal)) return true;
            }
            return false;
        }
    }

    /// <summary>
    /// The up to <paramref name="topK"/> entries stored before <paramref name="beforeRound"/> whose cosine distance to
    /// <paramref name="query"/> is strictly below <paramref name="distanceThreshold"/>, nearest first (ties: stored first).
    /// </summary>
    internal IReadOnlyList<MemoryEntry> Retrieve(ReadOnlySpan<float> query, int beforeRound, double distanceThreshold, int topK)
    {
        if (topK == 0) return [];
        var hits = new List<(double Distance, int Index, MemoryEntry Entry)>();
        lock (_lock)
        {
            for (int i = 0; i < _entries.Count; i++)
            {
                var e = _entries[i];
                if (e.Round >= beforeRound) continue;
                if (e.Embedding.Length != query.Length)
                    throw new InvalidOperationException(
                        $"Memory entry '{e.Question}' has a {e.Embedding.Length}-dim embedding but the query has {query.Length} dims; use one embedding generator throughout.");
                double distance = 1.0 - TensorPrimitives.CosineSimilarity(query, e.Embedding);
                if (distance < distanceThreshold) hits.Add((distance, i, e));
            }
        }
        hits.Sort((a, b) => a.Distance != b.Distance ? a.Distance.CompareTo(b.Distance) : a.Index.CompareTo(b.Index));
        return [.. hits.Take(topK).Select(h => h.Entry)];
    }
}
