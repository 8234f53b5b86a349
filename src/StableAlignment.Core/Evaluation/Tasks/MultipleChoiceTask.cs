namespace StableAlignment.Core.Evaluation;

/// <summary>One multiple-choice question: a context, its choices, and which choices are true.</summary>
/// <remarks>
/// Each choice is scored as the continuation <c>TargetDelimiter + choice</c> of <see cref="Context"/>
/// (see <see cref="MultipleChoiceTask.TargetDelimiter"/>). Most tasks have exactly one true choice; TruthfulQA
/// MC2 has several.
/// </remarks>
public sealed record MultipleChoiceItem
{
    /// <summary>Creates an item and checks it.</summary>
    /// <param name="id">An id unique within its task (used to pair items between models).</param>
    /// <param name="context">The prompt text that precedes every choice.</param>
    /// <param name="choices">At least two non-empty choices.</param>
    /// <param name="labels">One flag per choice: <see langword="true"/> for a correct choice; at least one.</param>
    /// <param name="category">An optional category for per-category breakdowns.</param>
    /// <param name="group">An optional group id; items sharing one are also scored together (group exact match).</param>
    /// <exception cref="ArgumentException">The item is malformed; the message says how.</exception>
    public MultipleChoiceItem(string id, string context, IReadOnlyList<string> choices, IReadOnlyList<bool> labels,
        string? category = null, string? group = null)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(choices);
        ArgumentNullException.ThrowIfNull(labels);
        if (choices.Count < 2)
        {
            throw new ArgumentException($"Item '{id}' has {choices.Count} choice(s); at least 2 are needed.", nameof(choices));
        }
        if (labels.Count != choices.Count)
        {
            throw new ArgumentException($"Item '{id}' has {choices.Count} choices but {labels.Count} labels.", nameof(labels));
        }
        for (int i = 0; i < choices.Count; i++)
        {
            if (string.IsNullOrEmpty(choices[i]))
            {
                throw new ArgumentException($"Item '{id}' has an empty choice at index {i}.", nameof(choices));
            }
        }
        if (!labels.Contains(true))
        {
            throw new ArgumentException($"Item '{id}' has no correct choice.", nameof(labels));
        }
        Id = id;
        Context = context;
        Choices = choices.ToArray();
        Labels = labels.ToArray();
        Category = category;
        Group = group;
    }

    /// <summary>Creates an item with exactly one correct choice.</summary>
    /// <param name="id">An id unique within its task.</param>
    /// <param name="context">The prompt text.</param>
    /// <param name="choices">At least two choices.</param>
    /// <param name="gold">The index of the correct choice.</param>
    /// <param name="category">An optional category.</param>
    /// <param name="group">An optional group id.</param>
    /// <returns>The item.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="gold"/> is not a choice index.</exception>
    public static MultipleChoiceItem WithGold(string id, string context, IReadOnlyList<string> choices, int gold,
        string? category = null, string? group = null)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (gold < 0 || gold >= choices.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(gold), gold, $"Item '{id}': gold index must be in [0, {choices.Count}).");
        }
        var labels = new bool[choices.Count];
        labels[gold] = true;
        return new MultipleChoiceItem(id, context, choices, labels, category, group);
    }

    /// <summary>An id unique within the task.</summary>
    public string Id { get; }

    /// <summary>The prompt text that precedes every choice.</summary>
    public string Context { get; }

    /// <summary>The choices, in source order.</summary>
    public IReadOnlyList<string> Choices { get; }

    /// <summary>One flag per choice: whether it is correct.</summary>
    public IReadOnlyList<bool> Labels { get; }

    /// <summary>The category for per-category breakdowns, if any.</summary>
    public string? Category { get; }

    /// <summary>The group id for group exact match (ETHICS), if any.</summary>
    public string? Group { get; }
}

/// <summary>Which per-item number a task reports as its headline.</summary>
public enum PrimaryMetric
{
    /// <summary><c>acc</c>: the highest raw log-likelihood is a correct choice.</summary>
    Accuracy,

    /// <summary><c>acc_norm</c>: the highest log-likelihood per character is a correct choice.</summary>
    AccuracyNormalized,

    /// <summary><c>mc2</c>: the probability mass (softmax over choices) on the correct choices (TruthfulQA MC2).</summary>
    TrueProbabilityMass,
}

/// <summary>A named list of multiple-choice items, scored the same way.</summary>
/// <param name="Name">The task name used in reports, for example <c>truthfulqa_mc1</c>.</param>
/// <param name="Items">The items, with unique ids.</param>
/// <param name="Primary">The headline metric.</param>
public sealed record MultipleChoiceTask(string Name, IReadOnlyList<MultipleChoiceItem> Items, PrimaryMetric Primary = PrimaryMetric.Accuracy)
{
    /// <summary>
    /// The text put between the context and each choice (lm-evaluation-harness <c>target_delimiter</c>);
    /// a single space by default.
    /// </summary>
    public string TargetDelimiter { get; init; } = " ";

    /// <summary>Checks the task: a name, at least one item, unique ids.</summary>
    /// <exception cref="ArgumentException">The task is malformed.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw new ArgumentException("A task needs a name.", nameof(Name));
        }
        ArgumentNullException.ThrowIfNull(Items);
        ArgumentNullException.ThrowIfNull(TargetDelimiter);
        if (Items.Count == 0)
        {
            throw new ArgumentException($"Task '{Name}' has no items.", nameof(Items));
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in Items)
        {
            if (!seen.Add(item.Id))
            {
                throw new ArgumentException($"Task '{Name}' has the item id '{item.Id}' more than once.", nameof(Items));
            }
        }
    }
}
