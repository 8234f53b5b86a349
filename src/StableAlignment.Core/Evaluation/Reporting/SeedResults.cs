namespace StableAlignment.Core.Evaluation;

/// <summary>One variant's judge scores on one judged task, item by item, so that two variants (or HH and HH-A) can be paired.</summary>
/// <param name="Model">The variant.</param>
/// <param name="Task">The judged task (for example <c>hh</c> or <c>hh-a</c>).</param>
/// <param name="Scores">Prompt <c>i</c>'s score, or null when its rating failed.</param>
/// <param name="Degenerate">Whether prompt <c>i</c>'s answer was degenerate (see <see cref="FluencyGate"/>).</param>
public sealed record JudgeItemScores(string Model, string Task, IReadOnlyList<double?> Scores, IReadOnlyList<bool> Degenerate)
{
    /// <summary>The scores of judged items (one model and task, in prompt order), with degenerate answers told by <paramref name="gate"/>.</summary>
    /// <param name="items">The items, as <see cref="JudgeEvaluation.RunAsync"/> returns them.</param>
    /// <param name="gate">Tells degenerate answers.</param>
    /// <returns>The scores.</returns>
    public static JudgeItemScores Of(IReadOnlyList<JudgedItem> items, FluencyGate gate)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentOutOfRangeException.ThrowIfLessThan(items.Count, 1, nameof(items));
        return new JudgeItemScores(items[0].Model, items[0].Task, [.. items.Select(i => (double?)i.Rating.Score)],
            [.. items.Select(i => gate.Check(i.Answer).IsDegenerate)]);
    }
}

/// <summary>Everything one training seed's evaluation produced, as <see cref="AblationReport"/> reads it.</summary>
/// <param name="Seed">The training seed.</param>
/// <param name="Results">Per-item results of every multiple-choice task (held-out ranking included) and variant.</param>
/// <param name="Judged">The judge summaries of every variant and judged task.</param>
/// <param name="Scores">The judge scores item by item (empty when they were not kept: no paired judge tests then).</param>
public sealed record SeedResults(int Seed, IReadOnlyList<TaskResults> Results, IReadOnlyList<JudgeSummary> Judged, IReadOnlyList<JudgeItemScores> Scores);
