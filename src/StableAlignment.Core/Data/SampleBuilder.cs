using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Data;

/// <summary>Turns interaction records into samples by the rules of spec §3, then deduplicates and mixes them.</summary>
internal static class SampleBuilder
{
    /// <summary>Every sample the rules allow, in record order: imitation, self-critic, realignment per record.</summary>
    public static List<AlignmentSample> Extract(IEnumerable<InteractionRecord> records, AlignmentDatasetOptions options)
    {
        var samples = new List<AlignmentSample>();
        foreach (var r in records)
        {
            ArgumentNullException.ThrowIfNull(r, nameof(records));
            // The agents' model wrote the draft, the revision and the peers' critiques alike.
            string model = r.Model ?? "";
            // Imitation: the draft and the revision, each rated by the mean observer alignment (failed ratings dropped).
            AddIf(samples, options, new AlignmentSample(SampleKind.Imitation, r.Question, "", r.Draft, r.DraftAlignment ?? double.NaN) { Model = model });
            AddIf(samples, options, new AlignmentSample(SampleKind.Imitation, r.Question, "", r.Revision, r.RevisionAlignment ?? double.NaN) { Model = model });

            // Self-critic: one per peer feedback, rated by that peer.
            string critic = r.Question + " " + options.SelfCriticInstruction;
            foreach (var f in r.Feedback)
                AddIf(samples, options, new AlignmentSample(SampleKind.SelfCritic, critic, r.Draft, f.Rating.Reason, f.Rating.Value ?? double.NaN) { Model = model });

            // Realignment: only when the revision improved and is rated above the threshold.
            if (r.DraftAlignment is double before && r.RevisionAlignment is double after
                && after > before && after > options.EffectiveRealignmentThreshold)
            {
                string feedback = string.Join("\n", r.Feedback
                    .Where(f => f.Rating.Succeeded && !string.IsNullOrWhiteSpace(f.Rating.Reason))
                    .Select(f => f.Rating.Reason));
                string instruction = r.Question + "\n" + r.Draft + "\n" + options.RealignmentInstruction;
                AddIf(samples, options, new AlignmentSample(SampleKind.Realignment, instruction, feedback, r.Revision, after) { Model = model });
            }
        }
        return samples;
    }

    // A sample needs a rating on the scale and a non-empty response; the reference's magic 8 / -1 never get here
    // because failed ratings are null (NaN above) and out-of-scale values are refused.
    private static void AddIf(List<AlignmentSample> samples, AlignmentDatasetOptions options, AlignmentSample s)
    {
        if (double.IsNaN(s.Rating) || s.Rating < options.MinRating || s.Rating > options.MaxRating)
            return;
        if (string.IsNullOrWhiteSpace(s.Output) || string.IsNullOrWhiteSpace(s.Instruction))
            return;
        samples.Add(s.Model.Length == 0 && options.DefaultModel.Length > 0 ? s with { Model = options.DefaultModel } : s);
    }

    /// <summary>Removes later samples whose (rendered prompt, output) pair was already seen; the first one wins.</summary>
    public static List<AlignmentSample> Deduplicate(IEnumerable<AlignmentSample> samples, PromptTemplate template)
    {
        var seen = new HashSet<(string, string)>();
        var kept = new List<AlignmentSample>();
        foreach (var s in samples)
        {
            if (seen.Add((s.RenderPrompt(template), s.Output)))
                kept.Add(s);
        }
        return kept;
    }

    /// <summary>
    /// Draws the largest subset whose per-kind counts follow <paramref name="mix"/> (each rounded down), uniformly
    /// without replacement within each kind, from <paramref name="seed"/>. Input order is kept among the chosen.
    /// </summary>
    public static List<AlignmentSample> Mix(IReadOnlyList<AlignmentSample> samples, KindMix mix, int seed)
    {
        var byKind = Enum.GetValues<SampleKind>().ToDictionary(k => k, _ => new List<int>());
        for (int i = 0; i < samples.Count; i++)
            byKind[samples[i].Kind].Add(i);

        // The scale is limited by the scarcest kind relative to its weight; zero-weight kinds are dropped.
        double scale = double.PositiveInfinity;
        foreach (var (kind, idx) in byKind)
        {
            if (mix[kind] > 0)
                scale = Math.Min(scale, idx.Count / mix[kind]);
        }
        var rng = new Random(seed);
        var chosen = new List<int>();
        foreach (var kind in Enum.GetValues<SampleKind>())
        {
            var idx = byKind[kind];
            int take = mix[kind] > 0 ? Math.Min(idx.Count, (int)Math.Floor(scale * mix[kind] + 1e-9)) : 0;
            // Partial Fisher-Yates: the first `take` entries become a uniform sample.
            for (int i = 0; i < take; i++)
            {
                int j = rng.Next(i, idx.Count);
                (idx[i], idx[j]) = (idx[j], idx[i]);
            }
            chosen.AddRange(idx.Take(take));
        }
        chosen.Sort();
        return chosen.ConvertAll(i => samples[i]);
    }
}
