using StableAlignment.Core.Experiment;
using StableAlignment.Core.Tests.TestSupport;

namespace StableAlignment.Core.Tests.Experiment;

/// <summary>The training run id: one per training seed, and independent of how many seeds the experiment trains.</summary>
public sealed class TrainingRunTests
{
    [Fact]
    public void Each_seed_is_its_own_run_and_adding_seeds_keeps_the_ids_of_those_trained()
    {
        using var dir = new TempFolder();
        string data = Path.Combine(dir.Path, "train.json");
        File.WriteAllText(data, "[]");
        var options = ExperimentOptions.Quick;
        string first = TrainingRun.IdOf(options, options.TrainingSeed(0), [data]);
        Assert.Equal(first, TrainingRun.IdOf(options with { Seeds = 3 }, options.TrainingSeed(0), [data]));
        Assert.NotEqual(first, TrainingRun.IdOf(options, options.TrainingSeed(1), [data]));
        // The seed of the society and dataset is not the training seed: only the latter decides the weights' run.
        Assert.Equal(first, TrainingRun.IdOf(options with { Seed = options.Seed + 7 }, options.TrainingSeed(0), [data]));
        File.WriteAllText(data, "[{}]");
        Assert.NotEqual(first, TrainingRun.IdOf(options, options.TrainingSeed(0), [data]));
    }
}
