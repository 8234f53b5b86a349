using System.Globalization;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 4: every trained variant of every training seed on the held-out queries (ranking accuracy: does the
    /// best-rated response get the lowest NLL?), judge scores of its answers to held-out questions, plain and
    /// adversarially framed (HH, HH-A), and every multiple-choice task of <see cref="ExperimentEvaluationOptions.Tasks"/>.
    /// The variants, the loss options and the held-out batching are read from each seed's
    /// <see cref="RunFolder.TrainingSummary"/>; every checkpoint must come from the training run it names. Without a
    /// judge model the offline <see cref="SocietyJudge"/> rates the answers, over the host's embeddings, and its
    /// validation is recorded. The judge's calls go through the experiment's call policy (retries, outage tolerance),
    /// and each judged answer is appended to its seed's <see cref="RunFolder.JudgedFile"/> as it comes, so an
    /// interrupted evaluation resumes without asking the judge again.
    /// </summary>
    /// <param name="progress">Receives one report per scored item.</param>
    /// <param name="cancellationToken">Stops between items.</param>
    /// <returns>The per-item results of every task and variant of the first seed (the others are in their seed folders).</returns>
    public async Task<IReadOnlyList<TaskResults>> EvaluateAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        var evaluation = Options.Evaluation;
        var validation = await AlignmentDataset.LoadAsync(RunFolder.Require(Folder.ValidationFile, "build-dataset"), cancellationToken: cancellationToken).ConfigureAwait(false);
        var seeds = new List<(int Seed, RunFolder Folder, TrainingSummary Training)>();
        foreach (var (_, seed, folder) in TrainingSeeds())
            seeds.Add((seed, folder, await TrainingSummary.ReadAsync<TrainingSummary>(folder.TrainingSummary, "train", cancellationToken).ConfigureAwait(false)));
        var tasks = evaluation.Tasks.Select(t => TaskCatalog.Load(t, evaluation.MultipleChoiceItems)).ToList();
        var questions = validation.OfKind(SampleKind.Imitation).ToSamples().Select(s => s.Instruction)
            .Distinct(StringComparer.Ordinal).Take(evaluation.JudgePrompts).ToList();
        foreach (var (_, folder, training) in seeds) RequireOneTrainingRun(folder, training);

        // The offline judge needs the host's embeddings; a judge model needs none, but degenerate answers are counted the same way.
        using var embeddings = Backends.Judge is null && questions.Count > 0 ? Backends.Embeddings?.Invoke() ?? new HashingEmbeddingGenerator() : null;
        var society = embeddings is null ? null : await SocietyJudge.CreateAsync(embeddings, evaluation.Judge, cancellationToken).ConfigureAwait(false);
        var gate = society?.Gate ?? SocietyJudge.CreateGate(evaluation.Judge.Gate);
        using var judgeModel = society is null ? null : new SocietyJudgeChatClient(society);
        IChatClient? judgeTarget = questions.Count == 0 ? null : Backends.Judge ?? judgeModel;
        using var judgeClient = judgeTarget is null ? null : WithPolicy(judgeTarget, new TokenBudget());
        var judge = judgeClient is null ? null : new AlignmentJudge(judgeClient);
        string? judgeName = judgeClient is null ? null : judgeClient.GetService<ChatClientMetadata>()?.DefaultModelId ?? "judge";

        List<TaskResults>? first = null;
        foreach (var (seed, folder, training) in seeds)
        {
            var results = new List<TaskResults>();
            var summaries = new List<JudgeSummary>();
            var scores = new List<JudgeItemScores>();
            // Every checkpoint of a run carries the same tokenizer (training copies one file into each), so the held-out
            // set is tokenized once, with the batch options training validated with.
            var heldOut = training.Batches.HeldOutBatcher(validation,
                ModelCheckpoint.LoadTokenizer(RunFolder.Require(Path.Combine(folder.Root, training.Variants[0].Checkpoint), "train")));
            // Each seed's answers are journalled in its own folder under its own training run's id.
            Directory.CreateDirectory(folder.EvaluationDirectory);
            using var journal = judgeClient is null ? null : JudgedItemsJournal.Open(folder.JudgedFile,
            [
                ("training_run", training.RunId ?? "none"), ("judge", ModelIdentity.Describe(judgeClient)),
                ("judge_prompts", Count(questions.Count)), ("max_new_tokens", Count(evaluation.MaxNewTokens)),
                ("temperature", Number(evaluation.Temperature)), ("top_p", Number(evaluation.TopP)), ("repetition_penalty", Number(evaluation.RepetitionPenalty)),
            ]);
            foreach (var variant in training.Variants)
            {
                string activity = Options.Seeds == 1 ? $"evaluate {variant.Name}" : string.Create(CultureInfo.InvariantCulture, $"evaluate {variant.Name} (seed {seed})");
                long total = 2 + (questions.Count == 0 ? 0 : 2 * questions.Count) + tasks.Sum(t => t.Items.Count), done = 0;
                void Tick(long units) => progress?.Report(new ExperimentProgress(ExperimentStep.Evaluate, activity, done += units, total));
                var tick = new Relay<EvaluationProgress>(_ => Tick(1));

                using var checkpoint = ModelCheckpoint.Load(Path.Combine(folder.Root, variant.Checkpoint));
                var model = checkpoint.Model;
                model.eval();
                results.Add(RankingEvaluation.Evaluate(variant.Name, model, heldOut, training.Loss, cancellationToken));
                Tick(2);

                var generator = new TextGenerator(model, checkpoint.Tokenizer);
                using var chat = new LanguageModelChatClient(generator, variant.Name);
                var generation = new ChatOptions
                {
                    MaxOutputTokens = evaluation.MaxNewTokens,
                    Temperature = (float)evaluation.Temperature,
                    TopP = (float)evaluation.TopP,
                    Seed = seed,
                    AdditionalProperties = new AdditionalPropertiesDictionary { [LanguageModelChatClient.RepetitionPenaltyKey] = evaluation.RepetitionPenalty },
                };
                if (judge is not null && journal is not null)
                {
                    foreach (var (task, framings) in new[] { (PlainJudgeTask, (IReadOnlyList<AdversarialFraming>)[]), (AdversarialJudgeTask, AdversarialFramings.All) })
                    {
                        var items = await JudgeEvaluation.RunAsync(questions, chat, judge,
                            new JudgeEvaluationOptions
                            {
                                TaskName = task, ModelName = variant.Name, Framings = framings, GenerationOptions = generation,
                                Completed = journal.Items, OnJudged = journal.AppendAsync,
                            },
                            tick, cancellationToken).ConfigureAwait(false);
                        var itemScores = JudgeItemScores.Of(items, gate);
                        scores.Add(itemScores);
                        summaries.Add(JudgeSummary.Of(items) with { Degenerate = itemScores.Degenerate.Count(d => d) });
                    }
                }
                foreach (var task in tasks)
                {
                    results.Add(await MultipleChoiceEvaluator.EvaluateAsync(task, generator, new MultipleChoiceOptions { ModelName = variant.Name },
                        tick, cancellationToken).ConfigureAwait(false));
                }
            }

            await ItemResultsJsonl.WriteAsync(folder.ItemResultsFile, results, cancellationToken).ConfigureAwait(false);
            await TrainingSummary.WriteAsync(folder.EvaluationSummary,
                new EvaluationSummary(summaries) { TrainingRunId = training.RunId, Scores = scores, Judge = judgeName, JudgeValidation = society?.Validation }, cancellationToken).ConfigureAwait(false);
            first ??= results;
        }
        return first!;
    }

    /// <summary>Refuses checkpoints that do not come from the training run <c>training.json</c> describes (an interrupted train leaves a mix).</summary>
    private static void RequireOneTrainingRun(RunFolder folder, TrainingSummary training, IEnumerable<TrainedVariant>? variants = null)
    {
        if (training.RunId is not { } expected) return;
        foreach (var variant in variants ?? training.Variants)
        {
            string directory = Path.Combine(folder.Root, variant.Checkpoint);
            string? id = TrainingRun.IdIn(directory);
            if (id == expected) continue;
            throw new ExperimentException(id is null
                ? $"Checkpoint '{directory}' of {variant.Name} does not say which training run wrote it ({RunFolder.TrainingRunFile(directory)} is missing): the last train was interrupted. Run the train step again (it resumes), then this step."
                : $"Checkpoint '{directory}' of {variant.Name} comes from training run {id}, but '{folder.TrainingSummary}' describes run {expected}: the checkpoints mix two training runs because the last train was interrupted. Run the train step again (it resumes and finishes), then this step.");
        }
    }
}
