using StableAlignment.Core.Data;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;
using StableAlignment.Plots;

namespace StableAlignment.Core.Tests.Plugins;

public sealed class PlotsTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private readonly TempFolder _dir = new("sa-plots-");

    public void Dispose() => _dir.Dispose();

    private static void AssertPng(string path) => Assert.Equal(PngSignature, File.ReadAllBytes(path).Take(8).ToArray());

    [Fact]
    public void Dataset_statistics_are_drawn_as_two_pngs()
    {
        var ds = AlignmentDataset.FromSamples(
        [
            new AlignmentSample(SampleKind.Imitation, "Q?", "", "An answer.", 6),
            new AlignmentSample(SampleKind.SelfCritic, "Q? Comment.", "An answer.", "A comment.", 3),
            new AlignmentSample(SampleKind.Realignment, "Q?\nAn answer.\nRevise.", "A comment.", "A revision.", 7),
        ]);
        var files = DatasetPlots.Save(ds.ComputeStatistics(), _dir.Path);
        Assert.Equal(["ratings.png", "lengths.png"], files.Select(Path.GetFileName));
        Assert.All(files, AssertPng);
    }

    [Fact]
    public void Training_curves_are_drawn_from_the_metrics_history_and_nothing_for_an_empty_one()
    {
        var position = new TrainingPosition(0, 0, 1, 1, 1);
        var history = new TrainingHistory(
            [new TrainingStepMetrics("imitation", position, 2.5, 2.0, 1.0, 0.5, 1e-3, 1.0, false, 100, 0.1),
             new TrainingStepMetrics("imitation", position with { GlobalStep = 2 }, 2.0, 1.8, 0.4, 0.7, 1e-3, 1.0, false, 100, 0.2)],
            [new ValidationMetrics("imitation", 2, 0.75, 1.9, 0.3, 2.1, 4)]);
        var files = TrainingPlots.Save(history, _dir.Path);
        Assert.Equal(["loss.png", "validation.png"], files.Select(Path.GetFileName));
        Assert.All(files, AssertPng);
        Assert.Empty(TrainingPlots.Save(new TrainingHistory([], []), _dir.File("empty")));
    }

    [Fact]
    public void The_society_figure_counts_drafts_and_revisions()
    {
        var record = new InteractionRecord
        {
            AgentId = 0, Label = Personas.Aligned, Round = 0, Question = "Q?", Draft = "d", Revision = "r", Feedback = [],
            DraftScores = [new ObserverScore(0, RatingOutcome.Success(2, ""), RatingOutcome.Success(3, ""))],
            RevisionScores = [new ObserverScore(0, RatingOutcome.Success(6, ""), RatingOutcome.Success(5, ""))],
            Passes = 1,
        };
        AssertPng(SocietyPlots.SaveRatingsBeforeAfter([record, record], _dir.File("ratings-before-after.png")));
    }
}
