namespace StableAlignment.Core.Evaluation;

/// <summary>How a tie for the best score is judged.</summary>
public enum TieBreaking
{
    /// <summary>
    /// A correct choice must score strictly higher than every incorrect one; any tie with an incorrect choice
    /// counts as wrong (TruthfulQA's reference code). The default: a model that cannot tell choices apart gets
    /// no credit.
    /// </summary>
    Strict,

    /// <summary>
    /// The lowest index among the tied best choices wins (NumPy <c>argmax</c>, as lm-evaluation-harness does);
    /// a tie counts as correct when that index is a correct choice.
    /// </summary>
    FirstIndex,
}

/// <summary>Options for <see cref="MultipleChoiceEvaluator"/>.</summary>
public sealed record MultipleChoiceOptions
{
    /// <summary>The model name used when none is given.</summary>
    public const string DefaultModelName = "model";

    /// <summary>The name of the model being scored, carried into results and reports (default <c>model</c>).</summary>
    public string ModelName { get; init; } = DefaultModelName;

    /// <summary>Requests per scorer call (default 32). Results do not depend on it.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>How ties for the best score are judged (default <see cref="TieBreaking.Strict"/>).</summary>
    public TieBreaking TieBreaking { get; init; } = TieBreaking.Strict;

    /// <summary>Whether per-item results keep the context text (default true; false makes result files smaller).</summary>
    public bool KeepContext { get; init; } = true;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">An option is out of range; the message names it.</exception>
    public void Validate()
    {
        if (BatchSize < 1)
        {
            throw new ArgumentException($"{nameof(BatchSize)} must be at least 1 (was {BatchSize}).", nameof(BatchSize));
        }
        if (string.IsNullOrWhiteSpace(ModelName))
        {
            throw new ArgumentException($"{nameof(ModelName)} must not be empty.", nameof(ModelName));
        }
        if (!Enum.IsDefined(TieBreaking))
        {
            throw new ArgumentException($"{nameof(TieBreaking)} has the undefined value {(int)TieBreaking}.", nameof(TieBreaking));
        }
    }
}

/// <summary>Progress of an evaluation: requests scored so far out of the total.</summary>
/// <param name="Task">The task being scored.</param>
/// <param name="Completed">Requests scored so far.</param>
/// <param name="Total">Requests in the task.</param>
public readonly record struct EvaluationProgress(string Task, int Completed, int Total);
