namespace StableAlignment.Core.Sandbox;

/// <summary>One question with an answer, e.g. a memory seed.</summary>
/// <param name="Question">The question.</param>
/// <param name="Answer">The answer.</param>
public sealed record QuestionAnswer(string Question, string Answer);

/// <summary>
/// The pool of questions a sandbox draws from: in round r, active agent number i (in id order) gets question
/// (r * activeAgents + i) mod count, so the schedule is fixed before the run starts.
/// </summary>
public sealed class QuestionSource
{
    private QuestionSource(IReadOnlyList<string> questions, string origin)
    {
        if (questions.Count == 0) throw new ArgumentException($"The question source ({origin}) holds no questions.", nameof(questions));
        Questions = questions;
    }

    /// <summary>The questions, in the order they are handed out.</summary>
    public IReadOnlyList<string> Questions { get; }

    /// <summary>Questions from a text file, one per non-blank line (e.g. <c>hh-questions.txt</c>).</summary>
    public static QuestionSource FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Question file '{path}' does not exist.", path);
        return new QuestionSource([.. File.ReadLines(path).Select(l => l.Trim()).Where(l => l.Length > 0)], $"file '{path}'");
    }

    /// <summary>Questions from a sequence (blank entries are skipped).</summary>
    public static QuestionSource FromEnumerable(IEnumerable<string> questions)
    {
        ArgumentNullException.ThrowIfNull(questions);
        return new QuestionSource([.. questions.Select(q => q?.Trim() ?? "").Where(q => q.Length > 0)], "sequence");
    }

    /// <summary>The built-in questions of the offline scenario bank (at least 200, over 8 kinds of social situation).</summary>
    public static QuestionSource BuiltIn() => new(ScenarioBank.Shared.ScheduleQuestions, "built-in scenario bank");
}
