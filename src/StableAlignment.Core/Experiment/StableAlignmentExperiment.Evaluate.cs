using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 4: every trained variant on the held-out queries (ranking accuracy: does the best-rated response get the
    /// lowest NLL?), judge scores of its answers to held-out questions, plain and adversarially framed (HH, HH-A), and
    /// every multiple-choice task of <see cref="ExperimentEvaluationOptions.Tasks"/>. The variants, the loss options
    /// and the held-out batching are read from <see cref="RunFolder.TrainingSummary"/>; every checkpoint must come from
    /// the training run it names. The judge's calls go through the experiment's call policy (retries, outage
    /// tolerance), and each judged answer is appended to <see cref="RunFolder.JudgedFile"/> as it comes, so an
    /// interrupted evaluation resumes without asking the judge again.
    /// </summary>
    /// <param name="progress">Receives one report per scored item.</param>
    /// <param name="cancellationToken">Stops between items.</param>
    /// <returns>The per-item results of every task and variant.</returns>
    public async Task<IReadOnlyList<TaskResults>> EvaluateAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        var evaluation = Options.Evaluation;
        var validation = await AlignmentDataset.LoadAsync(RunFolder.Require(Folder.ValidationFile, "build-dataset"), cancellationToken: cancellationToken).ConfigureAwait(false);
        var training = await TrainingSummary.ReadAsync<TrainingSummary>(Folder.TrainingSummary, "train", cancellationToken).ConfigureAwait(false);
        var tasks = evaluation.Tasks.Select(t => TaskCatalog.Load(t, evaluation.MultipleChoiceItems)).ToList();
        var questions = validation.OfKind(SampleKind.Imitation).ToSamples().Select(s => s.Instruction)
            .Distinct(StringComparer.Ordinal).Take(evaluation.JudgePrompts).ToList();
        RequireOneTrainingRun(training, training.Variants);
        using var judgeClient = WithPolicy(Backends.Judge ?? new SocietyJudgeChatClient(new OfflineSocietyChatClient(Options.Seed)), new TokenBudget());
        var judge = new AlignmentJudge(judgeClient);
        using var journal = JudgedItemsJournal.Open(Folder.JudgedFile,
        [
            ("training_run", training.RunId ?? "none"), ("judge", ModelIdentity.Describe(judgeClient)),
            ("judge_prompts", Count(questions.Count)), ("max_new_tokens", Count(evaluation.MaxNewTokens)),
        ]);

        // Every checkpoint of a run carries the same tokenizer (training copies one file into each), so the held-out
        // set is tokenized once, with the batch options training validated with.
        var first = training.Variants[0];
        var heldOut = training.Batches.HeldOutBatcher(validation, ModelCheckpoint.LoadTokenizer(RunFolder.Require(Path.Combine(Folder.Root, first.Checkpoint), "train")));

        var results = new List<TaskResults>();
        var summaries = new List<JudgeSummary>();
        foreach (var variant in training.Variants)
        {
            string activity = $"evaluate {variant.Name}";
            long total = 2 + (questions.Count == 0 ? 0 : 2 * questions.Count) + tasks.Sum(t => t.Items.Count), done = 0;
            void Tick(long units) => progress?.Report(new ExperimentProgress(ExperimentStep.Evaluate, activity, done += units, total));
            var tick = new Relay<EvaluationProgress>(_ => Tick(1));

            using var checkpoint = ModelCheckpoint.Load(Path.Combine(Folder.Root, variant.Checkpoint));
            var model = checkpoint.Model;
            model.eval();
            results.Add(RankingEvaluation.Evaluate(variant.Name, model, heldOut, training.Loss, cancellationToken));
            Tick(2);

            var generator = new TextGenerator(model, checkpoint.Tokenizer);
            using var chat = new LanguageModelChatClient(generator, variant.Name);
            var generation = new ChatOptions { MaxOutputTokens = evaluation.MaxNewTokens, Temperature = 0f };
            if (questions.Count > 0)
            {
                foreach (var (task, framings) in new[] { ("hh", (IReadOnlyList<AdversarialFraming>)[]), ("hh-a", AdversarialFramings.All) })
                {
                    var items = await JudgeEvaluation.RunAsync(questions, chat, judge,
                        new JudgeEvaluationOptions
                        {
                            TaskName = task, ModelName = variant.Name, Framings = framings, GenerationOptions = generation,
                            Completed = journal.Items, OnJudged = journal.AppendAsync,
                        },
                        tick, cancellationToken).ConfigureAwait(false);
                    summaries.Add(JudgeSummary.Of(items));
                }
            }
            foreach (var task in tasks)
            {
                results.Add(await MultipleChoiceEvaluator.EvaluateAsync(task, generator, new MultipleChoiceOptions { ModelName = variant.Name },
                    tick, cancellationToken).ConfigureAwait(false));
            }
        }

        Directory.CreateDirectory(Folder.EvaluationDirectory);
        await ItemResultsJsonl.WriteAsync(Folder.ItemResultsFile, results, cancellationToken).ConfigureAwait(false);
        await TrainingSummary.WriteAsync(Folder.EvaluationSummary, new EvaluationSummary(summaries) { TrainingRunId = training.RunId }, cancellationToken).ConfigureAwait(false);
        return results;
    }

    /// <summary>Refuses checkpoints that do not come from the training run <c>training.json</c> describes (an interrupted train leaves a mix).</summary>
    private void RequireOneTrainingRun(TrainingSummary training, IEnumerable<TrainedVariant> variants)
    {
        if (training.RunId is not { } expected) return;
        foreach (var variant in variants)
        {
            string directory = Path.Combine(Folder.Root, variant.Checkpoint);
            string? id = TrainingRun.IdIn(directory);
            if (id == expected) continue;
            throw new ExperimentException(id is null
                ? $"Checkpoint '{directory}' of {variant.Name} does not say which training run wrote it ({RunFolder.TrainingRunFile(directory)} is missing): the last train was interrupted. Run the train step again (it resumes), then this step."
                : $"Checkpoint '{directory}' of {variant.Name} comes from training run {id}, but '{Folder.TrainingSummary}' describes run {expected}: the checkpoints mix two training runs because the last train was interrupted. Run the train step again (it resumes and finishes), then this step.");
        }
    }
}
