using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 2: builds imitation, self-critic and realignment samples from the sandbox log (or from
    /// <see cref="ExperimentOptions.ReleasedDataset"/>), splits them by query into training and held-out sets, and
    /// writes both, the compact vocabulary of the training side, the statistics and (with plots) their figures.
    /// </summary>
    /// <param name="progress">Receives a report when the dataset is written.</param>
    /// <param name="cancellationToken">Stops the step.</param>
    /// <returns>What was built.</returns>
    /// <exception cref="ExperimentException">There is no log or file to build from, or too few queries.</exception>
    public async Task<DatasetSummary> BuildDatasetAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        var datasetOptions = Options.Dataset with { Seed = Options.Seed };
        AlignmentDataset dataset = Options.ReleasedDataset is { } released
            ? await AlignmentDataset.LoadAsync(RunFolder.RequireGiven(released, "the released dataset to build from"), options: datasetOptions, cancellationToken: cancellationToken).ConfigureAwait(false)
            : AlignmentDataset.FromInteractions(SandboxLog.ReadRecords(RunFolder.Require(Folder.SandboxLog, "simulate")), datasetOptions);
        if (dataset.Records.Count < 4)
            throw new ExperimentException($"Only {dataset.Records.Count} queries were built, too few to split: simulate more rounds.");

        Directory.CreateDirectory(Folder.DatasetDirectory);
        var (train, validation) = dataset.Split(Options.ValidationFraction, Options.Seed);
        await train.SaveAsync(Folder.TrainFile, AlignmentFileFormat.JsonArray, cancellationToken).ConfigureAwait(false);
        await validation.SaveAsync(Folder.ValidationFile, AlignmentFileFormat.JsonArray, cancellationToken).ConfigureAwait(false);

        // The vocabulary comes from the training side only, so held-out text can meet unknown tokens as real data would.
        var vocabulary = CompactVocabularyTokenizer.Build(ModelTokenizers.Gpt2(), train.Records.SelectMany(r => r.Responses.Prepend(r.Query)));
        vocabulary.Save(Folder.VocabularyFile);

        var statistics = dataset.ComputeStatistics();
        await File.WriteAllTextAsync(Folder.StatisticsFile, statistics.ToText(), cancellationToken).ConfigureAwait(false);
        Backends.Plots?.Dataset(statistics, Folder.DatasetDirectory);
        progress?.Report(new ExperimentProgress(ExperimentStep.BuildDataset, "build dataset", 1, 1));
        return new DatasetSummary(train.Records.Count, validation.Records.Count, vocabulary.VocabularySize, statistics);
    }
}
