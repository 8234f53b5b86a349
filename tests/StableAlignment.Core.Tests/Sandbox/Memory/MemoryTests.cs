using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

public class MemoryTests
{
    private static MemoryEntry Entry(string q, int round, params float[] e) => new(q, "answer to " + q, round) { Embedding = e };

    [Fact]
    public void Threshold_is_strict_and_top_k_takes_the_nearest()
    {
        var memory = new AgentMemory();
        memory.Add(Entry("same", -1, 1, 0));            // distance 0
        memory.Add(Entry("close", -1, 0.9f, 0.1f));     // distance ~0.006
        memory.Add(Entry("orthogonal", -1, 0, 1));      // distance 1
        memory.Add(Entry("opposite", -1, -1, 0));       // distance 2
        float[] query = [1, 0];
        Assert.Equal(["same"], memory.Retrieve(query, 0, 0.3, 1).Select(e => e.Question));
        Assert.Equal(["same", "close"], memory.Retrieve(query, 0, 0.3, 5).Select(e => e.Question));
        Assert.Equal(["same", "close"], memory.Retrieve(query, 0, 1.0, 5).Select(e => e.Question)); // 1.0 is not below 1.0
        Assert.Equal(["same", "close", "orthogonal"], memory.Retrieve(query, 0, 1.0001, 5).Select(e => e.Question));
        Assert.Empty(memory.Retrieve(query, 0, 0.3, 0));
    }

    [Fact]
    public void Only_entries_from_earlier_rounds_are_visible()
    {
        var memory = new AgentMemory();
        memory.Add(Entry("seed", -1, 0, 1));
        memory.Add(Entry("round2", 2, 1, 0));
        Assert.Empty(memory.Retrieve([1, 0], 2, 0.3, 1));
        Assert.Equal(["round2"], memory.Retrieve([1, 0], 3, 0.3, 1).Select(e => e.Question));
        Assert.False(memory.Contains("round2", 2));
        Assert.True(memory.Contains("round2", 3));
    }

    [Fact]
    public void Retrieval_matches_a_float64_oracle_on_random_vectors()
    {
        var vec = Gen.ArrayOf(Gen.Choose(-100, 100).Select(i => i / 50f), 6);
        var cases = from n in Gen.Choose(1, 12)
                    from vectors in Gen.ListOf(vec, n)
                    from query in vec
                    from k in Gen.Choose(1, 4)
                    from t in Gen.Choose(1, 19)
                    select (vectors, query, k, t);
        Prop.ForAll(cases.ToArbitrary(), c =>
            {
                var (vectors, query, k, t) = c;
                double threshold = t / 10.0;
                if (query.All(x => x == 0) || vectors.Any(v => v.All(x => x == 0))) return true;
                var memory = new AgentMemory();
                for (int i = 0; i < vectors.Count; i++) memory.Add(Entry("q" + i, -1, vectors[i]));
                static double Cos(float[] a, float[] b)
                {
                    double dot = 0, na = 0, nb = 0;
                    for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
                    return dot / Math.Sqrt(na * nb);
                }
                var oracle = vectors.Select((v, i) => (D: 1 - Cos(query, v), I: i))
                    .Where(x => x.D < threshold - 1e-5).OrderBy(x => x.D).ThenBy(x => x.I).Take(k).Select(x => "q" + x.I).ToList();
                var got = memory.Retrieve(query, 0, threshold, k).Select(e => e.Question).ToList();
                // Items within float rounding of the threshold may go either way; everything the oracle keeps must be found, in order.
                return got.Count >= oracle.Count && got.Take(oracle.Count).SequenceEqual(oracle)
                    || oracle.Count == k && got.SequenceEqual(oracle);
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public async Task Agents_are_seeded_from_their_persona_and_store_new_revisions()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small() with { Layout = PersonaLayout.HalfAndHalf, MemorySeedSize = 5 };
        await using var sandbox = SandboxTestKit.Offline(options);
        await sandbox.RunAsync(1, dir.File("log.db"));
        var aligned = ScenarioBank.Shared.MemorySeeds[Personas.Aligned].Select(p => p.Answer).ToHashSet();
        var misaligned = ScenarioBank.Shared.MemorySeeds[Personas.Misaligned].Select(p => p.Answer).ToHashSet();
        var records = SandboxLog.ReadRecords(dir.File("log.db"));
        foreach (var agent in sandbox.Agents)
        {
            var entries = agent.Memory.Snapshot();
            var seeds = entries.Where(e => e.Round == -1).ToList();
            Assert.Equal(5, seeds.Count);
            Assert.All(seeds, s => Assert.Contains(s.Answer, agent.Persona == Personas.Aligned ? aligned : misaligned));
            var record = records.Single(r => r.AgentId == agent.Id);
            bool wasNew = !seeds.Any(s => s.Question == record.Question);
            Assert.Equal(wasNew, entries.Any(e => e.Round == 0 && e.Question == record.Question && e.Answer == record.Revision));
        }
    }
}
