using Microsoft.Extensions.AI;
using Spectre.Console;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;

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

        // Every checkpoint of a run carries the same tokenizer (the train step copies one file into each), so the
        // held-out set is tokenized once for all variants.
        var heldOut = TrainStep.HeldOutBatches(validation,
            ModelBundle.LoadTokenizer(RunLayout.Require(layout.CheckpointDirectory(Variants.FolderName(Variants.All[0])), "train")), settings);

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
                    results.Add(RankingEvaluation.Evaluate(variant, model, heldOut, TrainStep.LossOptions(settings), ct));
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
}
