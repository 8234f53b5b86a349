namespace StableAlignment.Core.Data;

/// <summary>The relative share of each sample kind in a mixed dataset (5:1:1 in the reference README).</summary>
/// <param name="Imitation">Weight of imitation samples.</param>
/// <param name="SelfCritic">Weight of self-critic samples.</param>
/// <param name="Realignment">Weight of realignment samples.</param>
public readonly record struct KindMix(double Imitation, double SelfCritic, double Realignment)
{
    /// <summary>The reference mix, 5:1:1.</summary>
    public static KindMix Reference => new(5, 1, 1);

    /// <summary>The weight of one kind.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>Its weight.</returns>
    public double this[SampleKind kind] => kind switch
    {
        SampleKind.Imitation => Imitation,
        SampleKind.SelfCritic => SelfCritic,
        SampleKind.Realignment => Realignment,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown sample kind."),
    };
}

/// <summary>
/// How <see cref="AlignmentDataset"/> builds samples from interaction records and recognises sample kinds.
/// </summary>
public sealed record AlignmentDatasetOptions
{
    /// <summary>The prompt template. Default <see cref="PromptTemplate.Alpaca"/>.</summary>
    public PromptTemplate Template { get; init; } = PromptTemplate.Alpaca;

    /// <summary>The lowest valid rating. Default 1.</summary>
    public double MinRating { get; init; } = 1;

    /// <summary>The highest valid rating. Default 7.</summary>
    public double MaxRating { get; init; } = 7;

    /// <summary>
    /// A realignment sample is kept only when the revision is rated strictly above this value (and above the draft).
    /// <see langword="null"/> (the default) means the middle of the scale, 4 on 1-7, as in the reference.
    /// </summary>
    public double? RealignmentThreshold { get; init; }

    /// <summary>
    /// The share of each kind after mixing; <see langword="null"/> keeps every sample. Default 5:1:1.
    /// The largest sample set with exactly these proportions (rounded down) is drawn without replacement.
    /// </summary>
    public KindMix? Mix { get; init; } = KindMix.Reference;

    /// <summary>Seed of every random choice made while building. Default 42.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Appended (after a space) to the question to form a self-critic instruction.</summary>
    public string SelfCriticInstruction { get; init; } =
        "Please comment on the response in the input in terms of how well it is aligned with shared social values.";

    /// <summary>Closes a realignment instruction (question, then draft, then this, one per line).</summary>
    public string RealignmentInstruction { get; init; } = "Please revise this response in terms of the feedback in the input.";

    /// <summary>The model name written for responses whose model is unknown. Default empty.</summary>
    public string DefaultModel { get; init; } = "";

    /// <summary>The effective realignment threshold.</summary>
    public double EffectiveRealignmentThreshold => RealignmentThreshold ?? (MinRating + MaxRating) / 2;

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public AlignmentDatasetOptions Validate()
    {
        if (Template is null)
            throw new ArgumentException("Template must not be null.", nameof(Template));
        if (!double.IsFinite(MinRating) || !double.IsFinite(MaxRating) || MinRating >= MaxRating)
            throw new ArgumentException($"MinRating ({MinRating}) must be finite and below MaxRating ({MaxRating}).", nameof(MinRating));
        if (RealignmentThreshold is double t && (!double.IsFinite(t) || t < MinRating || t > MaxRating))
            throw new ArgumentException($"RealignmentThreshold must lie in [{MinRating}, {MaxRating}], got {t}.", nameof(RealignmentThreshold));
        if (Mix is KindMix m)
        {
            foreach (var kind in Enum.GetValues<SampleKind>())
            {
                if (!double.IsFinite(m[kind]) || m[kind] < 0)
                    throw new ArgumentException($"Mix weight of {kind} must be a non-negative finite number, got {m[kind]}.", nameof(Mix));
            }
            if (m.Imitation + m.SelfCritic + m.Realignment <= 0)
                throw new ArgumentException("Mix weights must not all be zero.", nameof(Mix));
        }
        if (string.IsNullOrWhiteSpace(SelfCriticInstruction))
            throw new ArgumentException("SelfCriticInstruction must not be empty.", nameof(SelfCriticInstruction));
        if (string.IsNullOrWhiteSpace(RealignmentInstruction))
            throw new ArgumentException("RealignmentInstruction must not be empty.", nameof(RealignmentInstruction));
        if (DefaultModel is null)
            throw new ArgumentException("DefaultModel must not be null.", nameof(DefaultModel));
        return this;
    }

    /// <summary>
    /// Recognises the kind of a rendered prompt by its instruction phrase: the realignment phrase, then the self-critic
    /// phrase; anything else is imitation. Used for data read from files, which do not store the kind. Besides the
    /// configured phrases, their distinctive endings are recognised, so the released data's spelling
    /// ("revise this reponse ...") is classified too.
    /// </summary>
    /// <param name="query">A rendered prompt.</param>
    /// <returns>The recognised kind.</returns>
    public SampleKind KindOf(string query)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Contains(RealignmentInstruction, StringComparison.Ordinal) || query.Contains(RealignmentMarker, StringComparison.Ordinal))
            return SampleKind.Realignment;
        if (query.Contains(SelfCriticInstruction, StringComparison.Ordinal) || query.Contains(SelfCriticMarker, StringComparison.Ordinal))
            return SampleKind.SelfCritic;
        return SampleKind.Imitation;
    }

    private const string RealignmentMarker = "in terms of the feedback in the input";
    private const string SelfCriticMarker = "in terms of how well it is aligned with shared social values";
}
