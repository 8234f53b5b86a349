namespace StableAlignment.Core.Training;

/// <summary>How the per-pair margins <c>d_i</c> of one group are reduced into its ranking term.</summary>
public enum RankingReduction
{
    /// <summary><c>max(0, mean_i d_i)</c>: the reference implementation's default.</summary>
    HingeOfMean,

    /// <summary><c>mean_i max(0, d_i)</c>: the RRHF-style per-pair hinge.</summary>
    MeanOfHinges,

    /// <summary><c>max(0, max_i d_i)</c>: the reference's <c>max_flow</c> option.</summary>
    HingeOfMax,
}

/// <summary>How a response's token negative log-likelihoods are reduced into its NLL.</summary>
public enum LengthNormalization
{
    /// <summary>Mean over the response's unmasked tokens (the reference).</summary>
    TokenMean,

    /// <summary>Sum over the response's unmasked tokens.</summary>
    Sum,
}

/// <summary>
/// Options of the Stable Alignment contrastive preference objective (spec §4).
/// Defaults follow the reference model card: rating scale 7, margin 1, ranking weight 0.2.
/// </summary>
public sealed record ContrastivePreferenceOptions
{
    /// <summary>The highest rating; margins are divided by it. Default 7.</summary>
    public double RatingScale { get; init; } = 7.0;

    /// <summary>The lowest valid rating. Default 1.</summary>
    public double MinRating { get; init; } = 1.0;

    /// <summary>The margin <c>M</c> in <c>d_i = NLL_best - NLL_i + M (r_best - r_i) / scale</c>. Default 1.</summary>
    public double Margin { get; init; } = 1.0;

    /// <summary>The weight <c>lambda</c> of the ranking term. Default 0.2.</summary>
    public double RankingWeight { get; init; } = 0.2;

    /// <summary>The ranking reduction. Default <see cref="RankingReduction.HingeOfMean"/> (the reference).</summary>
    public RankingReduction Reduction { get; init; } = RankingReduction.HingeOfMean;

    /// <summary>The length normalisation. Default <see cref="LengthNormalization.TokenMean"/> (the reference).</summary>
    public LengthNormalization LengthNormalization { get; init; } = LengthNormalization.TokenMean;

    /// <summary>
    /// When <see langword="true"/>, the loss is the SFT term alone (stage 2 of the paper). Ranking terms are
    /// still computed and reported for logging, but do not enter the loss or its gradient.
    /// </summary>
    public bool SftOnly { get; init; }

    /// <summary>Target id that marks a token as excluded when no explicit loss mask is given. Default <see cref="Data.PreferenceBatch.IgnoreIndex"/> (-100).</summary>
    public long IgnoreIndex { get; init; } = Data.PreferenceBatch.IgnoreIndex;

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ContrastivePreferenceOptions Validate()
    {
        if (!double.IsFinite(RatingScale) || RatingScale <= 0)
            throw new ArgumentException($"RatingScale must be a positive finite number, got {RatingScale}.", nameof(RatingScale));
        if (!double.IsFinite(MinRating) || MinRating >= RatingScale)
            throw new ArgumentException($"MinRating must be finite and below RatingScale ({RatingScale}), got {MinRating}.", nameof(MinRating));
        if (!double.IsFinite(Margin) || Margin < 0)
            throw new ArgumentException($"Margin must be a non-negative finite number, got {Margin}.", nameof(Margin));
        if (!double.IsFinite(RankingWeight) || RankingWeight < 0)
            throw new ArgumentException($"RankingWeight must be a non-negative finite number, got {RankingWeight}.", nameof(RankingWeight));
        if (!Enum.IsDefined(Reduction))
            throw new ArgumentException($"Unknown ranking reduction {(int)Reduction}.", nameof(Reduction));
        if (!Enum.IsDefined(LengthNormalization))
            throw new ArgumentException($"Unknown length normalisation {(int)LengthNormalization}.", nameof(LengthNormalization));
        if (IgnoreIndex >= 0)
            throw new ArgumentException($"IgnoreIndex must be negative so it cannot collide with a token id, got {IgnoreIndex}.", nameof(IgnoreIndex));
        return this;
    }
}
