namespace StableAlignment.Core.Evaluation;

/// <summary>Everything the harness knows about one scored item: the inputs, the raw scores and the metrics.</summary>
/// <remarks>The raw scores are kept so that the item can be rescored later (for example with another tie rule).</remarks>
public sealed record ItemResult
{
    /// <summary>The name of the model that was scored.</summary>
    public string Model { get; init; } = MultipleChoiceOptions.DefaultModelName;

    /// <summary>The task name.</summary>
    public required string Task { get; init; }

    /// <summary>The item id.</summary>
    public required string Id { get; init; }

    /// <summary>The item's category, if any.</summary>
    public string? Category { get; init; }

    /// <summary>The item's group, if any.</summary>
    public string? Group { get; init; }

    /// <summary>The context text, or <see langword="null"/> when results were written without it.</summary>
    public string? Context { get; init; }

    /// <summary>The choices.</summary>
    public required IReadOnlyList<string> Choices { get; init; }

    /// <summary>Which choices are correct.</summary>
    public required IReadOnlyList<bool> Labels { get; init; }

    /// <summary>The summed log-likelihood of each choice.</summary>
    public required IReadOnlyList<double> LogLikelihoods { get; init; }

    /// <summary>The token count of each choice's continuation, when the scorer reported it.</summary>
    public IReadOnlyList<int?>? TokenCounts { get; init; }

    /// <summary>The metrics derived from the scores.</summary>
    public required ItemMetrics Metrics { get; init; }
}

/// <summary>The per-item results of one task under one scorer.</summary>
/// <param name="Task">The task name.</param>
/// <param name="Primary">The task's headline metric.</param>
/// <param name="TieBreaking">The tie rule the metrics were computed with.</param>
/// <param name="Items">The item results, in task order.</param>
public sealed record TaskResults(string Task, PrimaryMetric Primary, TieBreaking TieBreaking, IReadOnlyList<ItemResult> Items)
{
    /// <summary>The name of the model that was scored.</summary>
    public string Model { get; init; } = MultipleChoiceOptions.DefaultModelName;

    /// <summary>Recomputes every item's metrics from its stored scores under a (possibly different) tie rule.</summary>
    /// <param name="tieBreaking">The tie rule to apply.</param>
    /// <returns>New results; the inputs and scores are unchanged.</returns>
    public TaskResults Rescore(TieBreaking tieBreaking) => this with
    {
        TieBreaking = tieBreaking,
        Items = Items.Select(i => i with { Metrics = ItemMetrics.Compute(i.Choices, i.Labels, i.LogLikelihoods, tieBreaking) }).ToArray(),
    };
}
