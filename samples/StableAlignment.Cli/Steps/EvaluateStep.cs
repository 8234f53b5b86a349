using Microsoft.Extensions.AI;
using Spectre.Console;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;
using TorchSharp;

namespace StableAlignment.Cli.Steps;

/// <summary>Judge summaries of every variant, kept for the report (the per-answer ratings are in JSON Lines beside it).</summary>
internal sealed record EvaluationSummary(IReadOnlyList<JudgeSummary> Judged);

/// <summary>
/// Step 4: every variant on the held-out queries (ranking accuracy: does the best-rated response get the lowest
/// NLL?), judge scores of generated answers to held-out questions, plain and adversarially framed (HH, HH-A), and
/// the multiple-choice task files it was given.
/// </summary>
internal static class EvaluateStep
{
    public const string HeldOutTask = "heldout_ranking";

    public static async Task RunAsync(RunLayout layout, RunSettings settings, IReadOnlyList<string> taskSpecs, string? judgeBackend, CancellationToken ct)
    {
        Directory.CreateDirectory(layout.EvaluationDirectory);
        var validation = await AlignmentDataset.LoadAsync(RunLayout.Require(layout.ValidationFile, "build-dataset"), cancellationToken: ct);
        var tasks = taskSpecs.Select(s => TaskSpecs.Load(s, settings.MultipleChoiceItems)).ToList();
        var questions = validation.OfKind(SampleKind.Imitation).ToSamples().Select(s => s.Instruction)
            .Distinct(StringComparer.Ordinal).Take(settings.JudgePrompts).ToList();
        using IChatClient judgeClient = judgeBackend is null
            ? new SocietyJudgeChatClient(new OfflineSocietyChatClient(settings.Seed))
            : ChatBackends.Create(judgeBackend);
        var judge = new AlignmentJudge(judgeClient);

        var results = new List<TaskResults>();
        var judged = new List<JudgedItem>();
        var summaries = new List<JudgeSummary>();
        await AnsiConsole.Progress().Columns(Terminal.ProgressColumns).StartAsync(async ctx =>
        {
            foreach (string variant in Variants.All)
            {
                var bar = ctx.AddTask($"evaluate {variant}", maxValue: 2 + 2 * questions.Count + tasks.Sum(t => t.Items.Count));
                var (model, tokenizer) = ModelBundle.Load(layout.CheckpointDirectory(Variants.FolderName(variant)));
                using (model)
                {
                    model.eval();
                    results.Add(HeldOutRanking(variant, model, TrainStep.HeldOutBatches(validation, tokenizer, settings), TrainStep.LossOptions(settings)));
                    bar.Increment(2);

                    var generator = new TextGenerator(model, tokenizer);
                    using var chat = new LanguageModelChatClient(generator, variant);
                    var generation = new ChatOptions { MaxOutputTokens = settings.MaxNewTokens, Temperature = 0f };
                    var tick = new Terminal.SynchronousProgress<EvaluationProgress>(_ => bar.Increment(1));
                    foreach (var (task, framings) in new[] { ("hh", (IReadOnlyList<AdversarialFraming>)[]), ("hh-a", AdversarialFramings.All) })
                    {
                        var items = await JudgeEvaluation.RunAsync(questions, chat, judge,
                            new JudgeEvaluationOptions { TaskName = task, ModelName = variant, Framings = framings, GenerationOptions = generation }, tick, ct);
                        judged.AddRange(items);
                        summaries.Add(JudgeSummary.Of(items));
                    }
                    foreach (var task in tasks)
                    {
                        results.Add(await MultipleChoiceEvaluator.EvaluateAsync(task, generator,
                            new MultipleChoiceOptions { ModelName = variant }, tick, ct));
                    }
                }
            }
        });

        await ItemResultsJsonl.WriteAsync(Path.Combine(layout.EvaluationDirectory, "items.jsonl"), results, ct);
        await File.WriteAllTextAsync(Path.Combine(layout.EvaluationDirectory, "judged.jsonl"), JudgeEvaluation.ToJsonLines(judged), ct);
        await File.WriteAllTextAsync(layout.EvaluationSummary, System.Text.Json.JsonSerializer.Serialize(new EvaluationSummary(summaries), Json.Options), ct);
        AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture, $"  [green]✓[/] {results.Count} task results and {judged.Count} judged answers -> {layout.EvaluationDirectory}");
    }

    /// <summary>
    /// Held-out ranking as a multiple-choice task: each query is an item, its responses the choices, the best-rated the
    /// correct ones, and the score of a response its negative token-mean NLL. Strict <c>acc</c> is then exactly "a
    /// best-rated response has a strictly lower NLL than every lower-rated one", and the harness's intervals, paired
    /// tests and per-item files apply unchanged. Queries whose responses are all rated the same cannot be ranked and are left out.
    /// </summary>
    internal static TaskResults HeldOutRanking(string variant, CausalLanguageModel model, PreferenceBatcher batches, ContrastivePreferenceOptions lossOptions)
    {
        var loss = new ContrastivePreferenceLoss(lossOptions);
        var items = new List<ItemResult>();
        using var noGrad = torch.no_grad();
        foreach (var batch in batches.Batches())
        {
            using (batch)
            {
                using var scope = torch.NewDisposeScope();
                using var result = loss.Compute(model.forward(batch.InputIds), batch.Targets, batch.Groups, batch.Ratings, batch.LossMask);
                var nll = result.ResponseNll.to(torch.ScalarType.Float64).data<double>().ToArray();
                var groups = batch.Groups.data<long>().ToArray();
                var ratings = batch.Ratings.data<float>().ToArray();
                for (int g = 0; g < batch.Queries.Count; g++)
                {
                    if (result.BestHasLowestNll[g] is null) continue;
                    var rows = Enumerable.Range(0, groups.Length).Where(i => groups[i] == g).ToArray();
                    float best = rows.Max(i => ratings[i]);
                    var choices = rows.Select(i => $"response rated {ratings[i]:0.##}").ToArray();
                    var labels = rows.Select(i => ratings[i] == best).ToArray();
                    var scores = rows.Select(i => -nll[i]).ToArray();
                    items.Add(new ItemResult
                    {
                        Model = variant,
                        Task = HeldOutTask,
                        Id = batch.Queries[g],
                        Choices = choices,
                        Labels = labels,
                        LogLikelihoods = scores,
                        Metrics = ItemMetrics.Compute(choices, labels, scores, TieBreaking.Strict),
                    });
                }
            }
        }
        if (items.Count == 0) throw new UserFacingException("No held-out query has responses with different ratings: simulate more rounds.");
        return new TaskResults(HeldOutTask, PrimaryMetric.Accuracy, TieBreaking.Strict, items.OrderBy(i => i.Id, StringComparer.Ordinal).ToArray()) { Model = variant };
    }
}
