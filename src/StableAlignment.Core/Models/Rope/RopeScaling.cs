namespace StableAlignment.Core.Models;

/// <summary>How rotary frequencies are rescaled for a longer context (Hugging Face's <c>rope_scaling</c>).</summary>
public enum RopeScalingKind
{
    /// <summary>Every inverse frequency divided by <see cref="RopeScaling.Factor"/> (position interpolation).</summary>
    Linear,

    /// <summary>
    /// Llama 3.1's rule: wavelengths below <c>original / HighFrequencyFactor</c> stay, those above
    /// <c>original / LowFrequencyFactor</c> are divided by <see cref="RopeScaling.Factor"/>, and the band between is
    /// interpolated smoothly.
    /// </summary>
    Llama3,
}

/// <summary>
/// Rotary-embedding frequency scaling as Hugging Face transformers defines it (<c>modeling_rope_utils.py</c>):
/// <c>{"rope_type": "linear", "factor": f}</c> or <c>{"rope_type": "llama3", "factor": f, "low_freq_factor": l,
/// "high_freq_factor": h, "original_max_position_embeddings": n}</c>. Both leave the attention scale at 1.
/// </summary>
public sealed record RopeScaling
{
    /// <summary>The rule.</summary>
    public RopeScalingKind Kind { get; init; }

    /// <summary>The context-extension factor (at least 1).</summary>
    public double Factor { get; init; } = 1.0;

    /// <summary>Llama 3 only: wavelengths above <c>OriginalMaxPositionEmbeddings / LowFrequencyFactor</c> are fully scaled.</summary>
    public double LowFrequencyFactor { get; init; } = 1.0;

    /// <summary>Llama 3 only: wavelengths below <c>OriginalMaxPositionEmbeddings / HighFrequencyFactor</c> are left alone.</summary>
    public double HighFrequencyFactor { get; init; } = 4.0;

    /// <summary>Llama 3 only: the context length the model was pre-trained with.</summary>
    public int OriginalMaxPositionEmbeddings { get; init; } = 8192;

    /// <summary>Checks every field and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public RopeScaling Validate()
    {
        if (!Enum.IsDefined(Kind)) throw new ArgumentException($"Kind must be a defined RopeScalingKind, got {Kind}.", nameof(Kind));
        if (!double.IsFinite(Factor) || Factor < 1) throw new ArgumentException($"Factor must be a finite number of at least 1, got {Factor}.", nameof(Factor));
        if (Kind == RopeScalingKind.Llama3)
        {
            if (!double.IsFinite(LowFrequencyFactor) || LowFrequencyFactor <= 0)
                throw new ArgumentException($"LowFrequencyFactor must be a positive finite number, got {LowFrequencyFactor}.", nameof(LowFrequencyFactor));
            if (!double.IsFinite(HighFrequencyFactor) || HighFrequencyFactor <= LowFrequencyFactor)
                throw new ArgumentException($"HighFrequencyFactor must be finite and above LowFrequencyFactor ({LowFrequencyFactor}), got {HighFrequencyFactor}.", nameof(HighFrequencyFactor));
            if (OriginalMaxPositionEmbeddings <= 0)
                throw new ArgumentException($"OriginalMaxPositionEmbeddings must be positive, got {OriginalMaxPositionEmbeddings}.", nameof(OriginalMaxPositionEmbeddings));
        }
        return this;
    }

    /// <summary>
    /// The ratio <c>scaled / unscaled</c> of the inverse frequency <paramref name="inverseFrequency"/> (1 for the
    /// high frequencies Llama 3 keeps). llama.cpp's <c>rope_freqs</c> tensor holds the reciprocal of this ratio.
    /// </summary>
    public double FrequencyRatio(double inverseFrequency)
    {
        if (Kind == RopeScalingKind.Linear) return 1.0 / Factor;
        double lowWavelength = OriginalMaxPositionEmbeddings / LowFrequencyFactor;
        double highWavelength = OriginalMaxPositionEmbeddings / HighFrequencyFactor;
        double wavelength = 2 * Math.PI / inverseFrequency;
        if (wavelength < highWavelength) return 1.0;
        if (wavelength > lowWavelength) return 1.0 / Factor;
        double smooth = (OriginalMaxPositionEmbeddings / wavelength - LowFrequencyFactor) / (HighFrequencyFactor - LowFrequencyFactor);
        return (1 - smooth) / Factor + smooth;
    }
}
