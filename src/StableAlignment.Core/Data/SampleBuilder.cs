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

            // Realignment: the draft and every pass's revision as one group (AddIf stamps the default model).
            foreach (var s in RealignmentGroup(r, options))
                AddIf(samples, options, s with { Model = model });
        }
        return samples;
    }

    /// <summary>
    /// The realignment group of one interaction: the prompt (question, draft, the first pass's feedback) with the draft,
    /// rated before revision, and every pass's revision, each rated by the observers after it, as its responses, so the
    /// contrastive objective learns to prefer the revision over repeating the draft. The spec's filter decides whether
    /// there is a group at all: its best-rated response must be a revision that improved on the draft and is rated above
    /// the threshold. A revision identical to an earlier answer adds nothing and is left out.
    /// </summary>
    private static IEnumerable<AlignmentSample> RealignmentGroup(InteractionRecord r, AlignmentDatasetOptions options)
    {
        if (r.DraftAlignment is not double before || !Valid(before, options) || string.IsNullOrWhiteSpace(r.Draft)) return [];
        var revisions = new List<(string Text, double Rating)>();
        foreach (var pass in r.AllPasses)
        {
            if (pass.Alignment is double rating && Valid(rating, options) && !string.IsNullOrWhiteSpace(pass.Revision)
                && pass.Revision != r.Draft && revisions.TrueForAll(x => x.Text != pass.Revision))
                revisions.Add((pass.Revision, rating));
        }
        if (revisions.Count == 0) return [];
        double best = revisions.Max(x => x.Rating);
        if (!(best > before && best > options.EffectiveRealignmentThreshold)) return [];

        string feedback = string.Join("\n", r.Feedback
            .Where(f => f.Rating.Succeeded && !string.IsNullOrWhiteSpace(f.Rating.Reason))
            .Select(f => f.Rating.Reason));
        string instruction = r.Question + "\n" + r.Draft + "\n" + options.RealignmentInstruction;
        return revisions.Prepend((Text: r.Draft, Rating: before))
            .Select(x => new AlignmentSample(SampleKind.Realignment, instruction, feedback, x.Text, x.Rating));
    }

    private static bool Valid(double rating, AlignmentDatasetOptions options) =>
        !double.IsNaN(rating) && rating >= options.MinRating && rating <= options.MaxRating;

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
    /// <remarks>
    /// The unit drawn is a sample, except for realignment, where it is a whole group (every sample of one rendered
    /// prompt): a realignment group is one interaction's revision with its contrast, the spec's one realignment
    /// sample, and drawing its responses apart would leave revisions without the draft they improve on.
    /// </remarks>
    public static List<AlignmentSample> Mix(IReadOnlyList<AlignmentSample> samples, KindMix mix, int seed, PromptTemplate template)
    {
        // Units of each kind: lists of sample indices, in order of first appearance.
        var byKind = Enum.GetValues<SampleKind>().ToDictionary(k => k, _ => new List<List<int>>());
        var groupOf = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            if (s.Kind != SampleKind.Realignment)
            {
                byKind[s.Kind].Add([i]);
                continue;
            }
            string prompt = s.RenderPrompt(template);
            if (!groupOf.TryGetValue(prompt, out var unit))
            {
                groupOf[prompt] = unit = [];
                byKind[s.Kind].Add(unit);
            }
            unit.Add(i);
        }

        // The scale is limited by the scarcest kind relative to its weight; zero-weight kinds are dropped.
        double scale = double.PositiveInfinity;
        foreach (var (kind, units) in byKind)
        {
            if (mix[kind] > 0)
                scale = Math.Min(scale, units.Count / mix[kind]);
        }
        var rng = new Random(seed);
        var chosen = new List<int>();
        foreach (var kind in Enum.GetValues<SampleKind>())
        {
            var units = byKind[kind];
            int take = mix[kind] > 0 ? Math.Min(units.Count, (int)Math.Floor(scale * mix[kind] + 1e-9)) : 0;
            // Partial Fisher-Yates: the first `take` entries become a uniform sample.
            for (int i = 0; i < take; i++)
            {
                int j = rng.Next(i, units.Count);
                (units[i], units[j]) = (units[j], units[i]);
            }
            foreach (var unit in units.Take(take)) chosen.AddRange(unit);
        }
        chosen.Sort();
        return chosen.ConvertAll(i => samples[i]);
    }
}
