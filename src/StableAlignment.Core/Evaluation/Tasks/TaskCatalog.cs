namespace StableAlignment.Core.Evaluation;

/// <summary>A multiple-choice task file and its kind, as given on a command line: <c>KIND=PATH</c>.</summary>
/// <param name="Kind">One of <see cref="TaskCatalog.Kinds"/>.</param>
/// <param name="Path">The task file.</param>
public sealed record TaskSpec(string Kind, string Path)
{
    /// <summary>Parses <c>KIND=PATH</c>.</summary>
    /// <param name="spec">The text.</param>
    /// <returns>The spec.</returns>
    /// <exception cref="ArgumentException">The text is not of that form or names an unknown kind.</exception>
    public static TaskSpec Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int eq = spec.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == spec.Length - 1)
            throw new ArgumentException($"Task '{spec}' is not of the form {TaskCatalog.Help}.", nameof(spec));
        var task = new TaskSpec(spec[..eq], spec[(eq + 1)..]);
        if (!TaskCatalog.Kinds.Contains(task.Kind, StringComparer.Ordinal))
            throw new ArgumentException($"Unknown task kind '{task.Kind}' in '{spec}'; use {TaskCatalog.Help}.", nameof(spec));
        return task;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Kind}={Path}";
}

/// <summary>Every benchmark loader of the library by its kind name, so hosts can offer them all by name.</summary>
public static class TaskCatalog
{
    private static readonly Dictionary<string, Func<string, MultipleChoiceTask>> Loaders = new(StringComparer.Ordinal)
    {
        ["truthfulqa-mc1"] = TruthfulQaTasks.LoadMc1,
        ["truthfulqa-mc2"] = TruthfulQaTasks.LoadMc2,
        ["ethics-justice"] = path => EthicsTasks.Load(path, EthicsSubset.Justice),
        ["ethics-deontology"] = path => EthicsTasks.Load(path, EthicsSubset.Deontology),
        ["ethics-commonsense"] = path => EthicsTasks.Load(path, EthicsSubset.Commonsense),
        ["ethics-virtue"] = path => EthicsTasks.Load(path, EthicsSubset.Virtue),
        ["ethics-utilitarianism"] = path => EthicsTasks.Load(path, EthicsSubset.Utilitarianism),
        ["moral-stories"] = MoralStoriesTasks.Load,
        ["hh-pairs"] = path => HhRlhfTasks.LoadPairs(path),
        ["jsonl"] = path => JsonlMultipleChoiceTasks.Load(path),
    };

    /// <summary>The kind names, in the order of <see cref="Help"/>.</summary>
    public static IReadOnlyList<string> Kinds { get; } = [.. Loaders.Keys];

    /// <summary>A one-line description of the <c>KIND=PATH</c> form.</summary>
    public static string Help { get; } = "KIND=PATH, KIND one of " + string.Join(", ", Loaders.Keys);

    /// <summary>Loads a task, keeping its first <paramref name="maxItems"/> items.</summary>
    /// <param name="spec">The kind and file.</param>
    /// <param name="maxItems">Items to keep; a fixed leading slice keeps comparisons paired across models.</param>
    /// <returns>The task.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="TaskFormatException">The file is malformed (the message names file and line).</exception>
    public static MultipleChoiceTask Load(TaskSpec spec, int maxItems = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxItems, 1);
        if (!Loaders.TryGetValue(spec.Kind, out var load))
            throw new ArgumentException($"Unknown task kind '{spec.Kind}'; use {Help}.", nameof(spec));
        if (!File.Exists(spec.Path)) throw new FileNotFoundException($"Task file '{spec.Path}' does not exist.", spec.Path);
        var task = load(spec.Path);
        return task.Items.Count <= maxItems ? task : task with { Items = task.Items.Take(maxItems).ToArray() };
    }
}
