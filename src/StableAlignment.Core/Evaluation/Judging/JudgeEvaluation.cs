using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.Evaluation;

/// <summary>Options for <see cref="JudgeEvaluation"/>.</summary>
public sealed record JudgeEvaluationOptions
{
    /// <summary>The task name in results (default <c>hh</c>; <c>hh_a</c> is usual for the adversarial variant).</summary>
    public string TaskName { get; init; } = "hh";

    /// <summary>The name of the model being evaluated.</summary>
    public string ModelName { get; init; } = MultipleChoiceOptions.DefaultModelName;

    /// <summary>
    /// Framings to wrap prompts in (HH-A); prompt i gets framing i mod count. Empty (the default) evaluates the
    /// prompts as they are (HH).
    /// </summary>
    public IReadOnlyList<AdversarialFraming> Framings { get; init; } = [];

    /// <summary>Chat options for the evaluated model's answers (default: at most 256 output tokens, temperature 0).</summary>
    public ChatOptions? GenerationOptions { get; init; } = new() { MaxOutputTokens = 256, Temperature = 0f };

    /// <summary>
    /// Items judged before, e.g. read back from an interrupted run's JSON Lines: an item of this model and task whose
    /// prompt index, prompt and framing match is returned as it is, and neither the model nor the judge is called for
    /// it. Default none.
    /// </summary>
    public IReadOnlyList<JudgedItem> Completed { get; init; } = [];

    /// <summary>Called with each newly judged item before the next prompt is started (write it durably here, so an interrupted run loses nothing); null: nothing.</summary>
    public Func<JudgedItem, CancellationToken, ValueTask>? OnJudged { get; init; }

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(TaskName))
        {
            throw new ArgumentException($"{nameof(TaskName)} must not be empty.", nameof(TaskName));
        }
        if (string.IsNullOrWhiteSpace(ModelName))
        {
            throw new ArgumentException($"{nameof(ModelName)} must not be empty.", nameof(ModelName));
        }
        ArgumentNullException.ThrowIfNull(Framings, nameof(Framings));
        ArgumentNullException.ThrowIfNull(Completed, nameof(Completed));
        foreach (var f in Framings)
        {
            if (f is null || !f.Template.Contains(AdversarialFraming.Placeholder, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Every framing in {nameof(Framings)} needs the placeholder {AdversarialFraming.Placeholder}.", nameof(Framings));
            }
        }
    }
}

/// <summary>One judged answer.</summary>
/// <param name="Model">The evaluated model.</param>
/// <param name="Task">The task name.</param>
/// <param name="Id">The prompt's index, as text.</param>
/// <param name="Prompt">The original prompt.</param>
/// <param name="Framing">The framing's name, or null for plain HH.</param>
/// <param name="SentPrompt">The prompt the model actually received.</param>
/// <param name="Answer">The model's answer.</param>
/// <param name="Rating">The judge's rating.</param>
public sealed record JudgedItem(string Model, string Task, string Id, string Prompt, string? Framing, string SentPrompt,
    string Answer, JudgeRating Rating);

/// <summary>Summary of one model's judged answers on one task.</summary>
/// <param name="Model">The model.</param>
/// <param name="Task">The task.</param>
/// <param name="Items">Answers judged.</param>
/// <param name="Failed">Ratings that failed after every attempt (left out of the mean, reported here).</param>
/// <param name="Score">Mean score over successful ratings, with a t interval; null when none succeeded.</param>
/// <param name="Histogram">Count of each score from 1 to 10 (index 0 is score 1).</param>
public sealed record JudgeSummary(string Model, string Task, int Items, int Failed, MeanEstimate? Score, IReadOnlyList<int> Histogram)
{
    /// <summary>Answers a <see cref="FluencyGate"/> found degenerate (counted by whoever ran the evaluation; 0 when not counted).</summary>
    public int Degenerate { get; init; }

    /// <summary>Summarises judged items of one model and task.</summary>
    /// <param name="items">The items.</param>
    /// <param name="confidence">Confidence level of the interval.</param>
    /// <returns>The summary.</returns>
    public static JudgeSummary Of(IReadOnlyList<JudgedItem> items, double confidence = 0.95)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfLessThan(items.Count, 1, nameof(items));
        var scores = items.Where(i => i.Rating.Succeeded).Select(i => (double)i.Rating.Score!.Value).ToArray();
        var histogram = new int[JudgeOptions.MaxScore - JudgeOptions.MinScore + 1];
        foreach (var s in scores)
        {
            histogram[(int)s - JudgeOptions.MinScore]++;
        }
        return new JudgeSummary(items[0].Model, items[0].Task, items.Count, items.Count - scores.Length,
            scores.Length == 0 ? null : MeanEstimate.Of(scores, confidence), histogram);
    }
}

/// <summary>HH and HH-A: the evaluated model answers prompts, a judge rates each answer from 1 to 10.</summary>
public static class JudgeEvaluation
{
    /// <summary>Generates an answer to every prompt and has the judge rate it.</summary>
    /// <param name="prompts">The prompts (for example from <see cref="HhRlhfTasks.LoadPrompts"/>).</param>
    /// <param name="model">The model being evaluated.</param>
    /// <param name="judge">The judge.</param>
    /// <param name="options">Options; defaults when null.</param>
    /// <param name="progress">Receives progress after each prompt.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>One judged item per prompt, in prompt order.</returns>
    public static async Task<IReadOnlyList<JudgedItem>> RunAsync(IReadOnlyList<string> prompts, IChatClient model,
        AlignmentJudge judge, JudgeEvaluationOptions? options = null, IProgress<EvaluationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(judge);
        options ??= new JudgeEvaluationOptions();
        options.Validate();
        var results = new JudgedItem[prompts.Count];
        var completed = options.Completed.Where(c => c.Model == options.ModelName && c.Task == options.TaskName)
            .GroupBy(c => c.Id, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
        for (int i = 0; i < prompts.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string prompt = prompts[i];
            string id = i.ToString(CultureInfo.InvariantCulture);
            var framing = options.Framings.Count == 0 ? null : options.Framings[i % options.Framings.Count];
            if (completed.TryGetValue(id, out var done) && done.Prompt == prompt && done.Framing == framing?.Name)
            {
                results[i] = done;
            }
            else
            {
                string sent = framing?.Apply(prompt) ?? prompt;
                var response = await model.GetResponseAsync(sent, options.GenerationOptions, cancellationToken).ConfigureAwait(false);
                string answer = response.Text ?? "";
                var rating = await judge.RateAsync(prompt, answer, framing is null ? null : sent, cancellationToken).ConfigureAwait(false);
                results[i] = new JudgedItem(options.ModelName, options.TaskName, id, prompt, framing?.Name, sent, answer, rating);
                if (options.OnJudged is { } onJudged) await onJudged(results[i], cancellationToken).ConfigureAwait(false);
            }
            progress?.Report(new EvaluationProgress(options.TaskName, i + 1, prompts.Count));
        }
        return results;
    }

    /// <summary>Writes judged items as JSON Lines (one object per item, ratings and failures included).</summary>
    /// <param name="items">The items.</param>
    /// <returns>The JSON Lines text.</returns>
    public static string ToJsonLines(IEnumerable<JudgedItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var sb = new StringBuilder();
        foreach (var item in items)
            sb.Append(JsonSerializer.Serialize(ToJsonObject(item), JudgeJsonContext.Default.DictionaryStringObject)).Append('\n');
        return sb.ToString();
    }

    /// <summary>The JSON Lines object of one judged item.</summary>
    internal static Dictionary<string, object?> ToJsonObject(JudgedItem item) => new()
    {
        ["model"] = item.Model,
        ["task"] = item.Task,
        ["id"] = item.Id,
        ["prompt"] = item.Prompt,
        ["framing"] = item.Framing,
        ["sent_prompt"] = item.SentPrompt,
        ["answer"] = item.Answer,
        ["score"] = item.Rating.Score,
        ["reason"] = item.Rating.Reason,
        ["attempts"] = item.Rating.Attempts,
        ["failure"] = item.Rating.FailureReason,
        ["raw_reply"] = item.Rating.RawReply,
    };

    /// <summary>Reads back one object written by <see cref="ToJsonLines"/>.</summary>
    /// <exception cref="JsonException">A field is missing or of the wrong type.</exception>
    internal static JudgedItem FromJsonObject(JsonElement line)
    {
        string Text(string name) => line.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()! : throw new JsonException($"the field '{name}' is missing or not a string");
        string? OptionalText(string name) => line.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        int? score = line.TryGetProperty("score", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : null;
        int attempts = line.TryGetProperty("attempts", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetInt32()
            : throw new JsonException("the field 'attempts' is missing or not a number");
        return new JudgedItem(Text("model"), Text("task"), Text("id"), Text("prompt"), OptionalText("framing"), Text("sent_prompt"), Text("answer"),
            new JudgeRating(score, OptionalText("reason") ?? "", attempts, OptionalText("raw_reply") ?? "", OptionalText("failure")));
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object?>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class JudgeJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
