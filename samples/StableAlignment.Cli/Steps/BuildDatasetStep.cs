using Spectre.Console;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Cli.Steps;

/// <summary>
/// Step 2: alignment samples from the sandbox log (or a released-format file), split by query into train and
/// validation, with statistics, plots, and the compact vocabulary the tiny model is trained over.
/// </summary>
internal static class BuildDatasetStep
{
    public static async Task RunAsync(RunLayout layout, RunSettings settings, string? releasedFile, CancellationToken ct)
    {
        Directory.CreateDirectory(layout.DatasetDirectory);
        AlignmentDataset dataset;
        if (releasedFile is null)
        {
            var records = SandboxLog.ReadRecords(RunLayout.Require(layout.SandboxLog, "simulate"));
            dataset = AlignmentDataset.FromInteractions(records, new AlignmentDatasetOptions { Seed = settings.Seed });
        }
        else
        {
            dataset = await AlignmentDataset.LoadAsync(RunLayout.Require(releasedFile, "--released"), cancellationToken: ct);
        }
        if (dataset.Records.Count < 4) throw new UserFacingException($"Only {dataset.Records.Count} queries were built: simulate more rounds.");

        var (train, validation) = dataset.Split(settings.ValidationFraction, settings.Seed);
        await train.SaveAsync(layout.TrainFile, AlignmentFileFormat.JsonArray, ct);
        await validation.SaveAsync(layout.ValidationFile, AlignmentFileFormat.JsonArray, ct);

        // The vocabulary comes from the training side only, so held-out text can meet unknown tokens as real data would.
        var corpus = train.Records.SelectMany(r => r.Responses.Prepend(r.Query));
        var vocabulary = CompactVocabularyTokenizer.Build(ModelTokenizers.Gpt2(), corpus);
        vocabulary.Save(layout.VocabularyFile);

        var statistics = dataset.ComputeStatistics();
        await File.WriteAllTextAsync(Path.Combine(layout.DatasetDirectory, "statistics.txt"), statistics.ToText(), ct);
        statistics.SavePlots(layout.DatasetDirectory);

        var table = new Table().AddColumns("kind", "queries", "samples");
        foreach (var kind in statistics.PerKind)
            table.AddRow(kind.Kind.ToString(), kind.Queries.ToString(System.Globalization.CultureInfo.InvariantCulture), kind.Samples.ToString(System.Globalization.CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture,
            $"  [green]✓[/] {train.Records.Count} train / {validation.Records.Count} validation queries, vocabulary {vocabulary.VocabularySize} tokens -> {layout.DatasetDirectory}");
    }
}
