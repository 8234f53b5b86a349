using TorchSharp;
using static TorchSharp.torch;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Data;

namespace StableAlignment.Core.Training;

/// <summary>
/// Held-out ranking accuracy (does the best-rated response of a query get the lowest NLL?) as a multiple-choice task,
/// measured by the same pass as the trainer's validation (<see cref="StableAlignmentTrainer.Validate"/>),
/// so the harness's intervals, paired comparisons, reports and per-item files apply to it unchanged.
/// </summary>
/// <remarks>
/// Each query is an item; its responses are the choices; the responses with the top rating are the correct choices;
/// a response's score is its negative NLL under the loss's length normalisation. With <see cref="TieBreaking.Strict"/>,
/// <c>acc</c> is then exactly the loss's <see cref="PreferenceLossResult.BestHasLowestNll"/>. Queries whose responses
/// all share one rating cannot be ranked and are left out.
/// </remarks>
public static class RankingEvaluation
{
    /// <summary>The task name the results carry.</summary>
    public const string TaskName = AblationReport.RankingTaskName;

    /// <summary>Scores every query of <paramref name="batches"/> (epoch 0) with <paramref name="model"/>.</summary>
    /// <param name="modelName">The model's name in the results.</param>
    /// <param name="model">Maps input ids <c>[N, T]</c> to logits <c>[N, T, V]</c>; run without gradients.</param>
    /// <param name="batches">The held-out batches, grouped by query.</param>
    /// <param name="lossOptions">The objective's options (length normalisation, ignore index); defaults when null.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <returns>One item per rankable query, ordered by query text.</returns>
    /// <exception cref="ArgumentException">No query of <paramref name="batches"/> can be ranked.</exception>
    public static TaskResults Evaluate(string modelName, nn.Module<Tensor, Tensor> model, IPreferenceBatchSource batches,
        ContrastivePreferenceOptions? lossOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        var items = new List<ItemResult>();
        HeldOutRanking.Score(model, batches, new ContrastivePreferenceLoss(lossOptions), null, (batch, result) =>
        {
            double[] nll = result.ResponseNll.to(ScalarType.Float64).cpu().data<double>().ToArray();
            long[] groups = batch.Groups.cpu().data<long>().ToArray();
            float[] ratings = batch.Ratings.cpu().data<float>().ToArray();
            for (int g = 0; g < batch.Queries.Count; g++)
            {
                if (result.BestHasLowestNll[g] is null) continue;
                int[] rows = Enumerable.Range(0, groups.Length).Where(i => groups[i] == g).ToArray();
                float best = rows.Max(i => ratings[i]);
                string[] choices = rows.Select(i => $"response {i} rated {ratings[i].ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)}").ToArray();
                bool[] labels = rows.Select(i => ratings[i] == best).ToArray();
                double[] scores = rows.Select(i => -nll[i]).ToArray();
                items.Add(new ItemResult
                {
                    Model = modelName,
                    Task = TaskName,
                    Id = batch.Queries[g],
                    Choices = choices,
                    Labels = labels,
                    LogLikelihoods = scores,
                    Metrics = ItemMetrics.Compute(choices, labels, scores, TieBreaking.Strict),
                });
            }
        }, cancellationToken);
        if (items.Count == 0)
            throw new ArgumentException("No held-out query has responses with different ratings, so nothing can be ranked.", nameof(batches));
        return new TaskResults(TaskName, PrimaryMetric.Accuracy, TieBreaking.Strict, items.OrderBy(i => i.Id, StringComparer.Ordinal).ToArray()) { Model = modelName };
    }
}

/// <summary>
/// The one pass over held-out batches that both the trainer's validation and <see cref="RankingEvaluation"/> make:
/// every batch of epoch 0 through the model in eval mode without gradients, its loss result handed to a visitor.
/// </summary>
internal static class HeldOutRanking
{
    public static void Score(nn.Module<Tensor, Tensor> model, IPreferenceBatchSource source, IPreferenceLoss loss, ReferenceModel? reference,
        Action<PreferenceBatch, PreferenceLossResult> visit, CancellationToken cancellationToken)
    {
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            foreach (var batch in source.Batches(0))
            {
                using (batch)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var scope = torch.NewDisposeScope();
                    using var result = Compute(loss, model.call(batch.InputIds.to(device)), batch, reference, device);
                    visit(batch, result);
                }
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <summary>The loss of one batch's logits; a loss that needs the reference model's NLLs gets them from <paramref name="reference"/>.</summary>
    public static PreferenceLossResult Compute(IPreferenceLoss loss, Tensor logits, PreferenceBatch batch, ReferenceModel? reference, Device device)
    {
        var (targets, groups, ratings, mask) = (batch.Targets.to(device), batch.Groups.to(device), batch.Ratings.to(device), batch.LossMask.to(device));
        if (loss is not IReferencePreferenceLoss needsReference) return loss.Compute(logits, targets, groups, ratings, mask);
        if (reference is null) throw new InvalidOperationException($"{loss.GetType().Name} needs a reference model, and none was given.");
        return needsReference.ComputeWithReference(logits, targets, groups, ratings, reference.ResponseNll(batch).to(device), mask);
    }
}
