namespace StableAlignment.Core.Models;

/// <summary>How <see cref="TextGenerator"/> decodes. Defaults: greedy, 128 new tokens, KV cache on.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate. Default 128.</summary>
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Softmax temperature; 0 means greedy (argmax). Default 0.</summary>
    public double Temperature { get; init; }

    /// <summary>Keep only the <c>k</c> most likely tokens before sampling; 0 disables. Default 0.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches <c>p</c> (nucleus sampling); 1 disables. Default 1.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>
    /// The repetition penalty of CTRL (Keskar et al. 2019) as Hugging Face applies it: before each choice, the logit of
    /// every token already generated is divided by the penalty when positive and multiplied by it when negative. 1
    /// disables it; 1.1 to 1.3 are usual. Only generated tokens count, not the prompt's, so an answer may repeat the
    /// question's words. Default 1.
    /// </summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Seed of the sampler; the same seed, prompt and model give the same text. Null draws a random seed.</summary>
    public int? Seed { get; init; }

    /// <summary>Generation stops before the first occurrence of any of these strings, which is not returned.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>Whether to reuse keys and values of earlier positions (same result, much faster). Default true.</summary>
    public bool UseKeyValueCache { get; init; } = true;

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public GenerationOptions Validate()
    {
        if (MaxNewTokens <= 0) throw new ArgumentException($"MaxNewTokens must be positive, got {MaxNewTokens}.", nameof(MaxNewTokens));
        if (!double.IsFinite(Temperature) || Temperature < 0) throw new ArgumentException($"Temperature must be a non-negative finite number, got {Temperature}.", nameof(Temperature));
        if (TopK < 0) throw new ArgumentException($"TopK must be non-negative, got {TopK}.", nameof(TopK));
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"TopP must be in (0, 1], got {TopP}.", nameof(TopP));
        if (!(double.IsFinite(RepetitionPenalty) && RepetitionPenalty > 0)) throw new ArgumentException($"RepetitionPenalty must be a positive finite number, got {RepetitionPenalty}.", nameof(RepetitionPenalty));
        if (StopSequences is null || StopSequences.Any(string.IsNullOrEmpty))
            throw new ArgumentException("StopSequences must not be null or contain empty strings.", nameof(StopSequences));
        return this;
    }
}

/// <summary>Why generation ended.</summary>
public enum GenerationFinishReason
{
    /// <summary>The model emitted its end-of-text token, or a stop sequence appeared.</summary>
    Stop,

    /// <summary><see cref="GenerationOptions.MaxNewTokens"/> or the model's context length was reached.</summary>
    Length,
}

/// <summary>The outcome of one generation.</summary>
/// <param name="Text">The generated text, without the prompt and without any stop sequence.</param>
/// <param name="TokenIds">The generated token ids (up to the end-of-text token, excluded).</param>
/// <param name="FinishReason">Why generation ended.</param>
public sealed record GenerationResult(string Text, IReadOnlyList<int> TokenIds, GenerationFinishReason FinishReason);

/// <summary>The log-likelihood of a continuation given its context.</summary>
/// <param name="LogLikelihood">Sum of the natural-log probabilities of the continuation's tokens.</param>
/// <param name="TokenCount">Number of continuation tokens scored.</param>
/// <param name="IsGreedy">Whether every continuation token is the model's argmax at its position.</param>
public readonly record struct ContinuationScore(double LogLikelihood, int TokenCount, bool IsGreedy);
