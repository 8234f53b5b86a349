using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Experiment;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;

namespace StableAlignment.Plots;

/// <summary>Every figure of an experiment, drawn with ScottPlot.</summary>
public sealed class ExperimentPlots : IExperimentPlots
{
    /// <inheritdoc />
    public IReadOnlyList<string> Dataset(AlignmentDatasetStatistics statistics, string directory) => DatasetPlots.Save(statistics, directory);

    /// <inheritdoc />
    public IReadOnlyList<string> Training(TrainingHistory history, string directory) => TrainingPlots.Save(history, directory);

    /// <inheritdoc />
    public IReadOnlyList<string> Society(IReadOnlyList<InteractionRecord> interactions, string directory) =>
        [SocietyPlots.SaveRatingsBeforeAfter(interactions, Path.Combine(directory, "ratings-before-after.png"))];

    /// <inheritdoc />
    public IReadOnlyList<string> Report(AblationReport report, string directory) =>
        [ReportPlots.SaveAccuracy(report, Path.Combine(directory, "accuracy.png"))];
}

/// <summary>Plugs the plots into an experiment.</summary>
public static class ExperimentBackendsExtensions
{
    /// <summary>The experiment draws its figures with <see cref="ExperimentPlots"/>.</summary>
    /// <param name="backends">The experiment's backends.</param>
    /// <returns>A copy that draws plots.</returns>
    public static ExperimentBackends WithPlots(this ExperimentBackends backends)
    {
        ArgumentNullException.ThrowIfNull(backends);
        return backends with { Plots = new ExperimentPlots() };
    }
}
