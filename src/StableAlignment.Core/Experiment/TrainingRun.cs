using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

/// <summary>
/// The identity of one training run and the markers that tie its files to it. The id is a hash of everything that
/// decides the weights (seed, model and training options, variants, the dataset and tokenizer files, the checkpoint
/// started from), so a train interrupted and run again with the same inputs is the same run and resumes, while a
/// train with other inputs is another run. Every checkpoint folder and every metrics folder holds
/// <see cref="RunFolder.TrainingRunFile"/> with the id of the run that wrote it, and <c>training.json</c> records the
/// id, so evaluation can refuse a folder whose checkpoints come from different runs.
/// </summary>
internal static class TrainingRun
{
    private const string Format = "stable-alignment-training-run/1";

    /// <summary>What a training run found in its metrics folder.</summary>
    public enum Start
    {
        /// <summary>Nothing of this run: train from the start.</summary>
        Fresh,

        /// <summary>The trainer's state of this run: continue from its last checkpoint.</summary>
        Resume,

        /// <summary>This run finished before: nothing to train.</summary>
        Completed,
    }

    /// <summary>The parameters of a run's model: those the optimizer trained (the adapters' only, with LoRA) and all of them.</summary>
    public sealed record ModelSize(long Trainable, long All);

    private sealed record Marker(string Format, string RunId, bool Completed)
    {
        public ModelSize? Size { get; init; }
    }

    /// <summary>
    /// The id of the run these inputs make with training seed <paramref name="seed"/>. The number of seeds is not part
    /// of it, so adding seeds leaves the runs of the seeds already trained as they are.
    /// </summary>
    public static string IdOf(ExperimentOptions options, int seed, IEnumerable<string> inputFiles)
    {
        var text = new StringBuilder(Format).Append('\n');
        text.Append(JsonSerializer.Serialize(new { Seed = seed, options.Model, options.Training, options.Variants }, TrainingSummary.Json)).Append('\n');
        foreach (string file in inputFiles)
        {
            using var stream = File.OpenRead(file);
            text.Append(Path.GetFileName(file)).Append('=').Append(Convert.ToHexStringLower(SHA256.HashData(stream))).Append('\n');
        }
        // A Hugging Face checkpoint may be gigabytes: its files are known by name and size.
        if (options.Model.InitFrom is { } init && Directory.Exists(init))
        {
            foreach (var file in new DirectoryInfo(init).GetFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
                text.Append("init/").Append(file.Name).Append('=').Append(file.Length).Append('\n');
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16];
    }

    /// <summary>The id of the run that wrote <paramref name="directory"/>, or null when it holds no marker.</summary>
    /// <exception cref="ExperimentException">The marker is not readable.</exception>
    public static string? IdIn(string directory) => Read(directory)?.RunId;

    /// <summary>
    /// Decides how run <paramref name="runId"/> starts in its metrics folder. A fresh start removes what another run
    /// left there (its curves and trainer state) and the markers of the checkpoints it will overwrite, so no checkpoint
    /// claims a run it does not come from while this one trains.
    /// </summary>
    public static Start Prepare(string metricsDirectory, string stateDirectory, string runId, IEnumerable<string> checkpointDirectories)
    {
        var marker = Read(metricsDirectory);
        if (marker?.RunId == runId)
        {
            if (marker.Completed && checkpointDirectories.All(d => IdIn(d) == runId)) return Start.Completed;
            if (Directory.Exists(stateDirectory)) return Start.Resume;
        }
        foreach (string checkpoint in checkpointDirectories)
        {
            string file = RunFolder.TrainingRunFile(checkpoint);
            if (File.Exists(file)) File.Delete(file);
        }
        if (Directory.Exists(metricsDirectory)) Directory.Delete(metricsDirectory, recursive: true);
        Directory.CreateDirectory(metricsDirectory);
        Write(metricsDirectory, new Marker(Format, runId, Completed: false));
        return Start.Fresh;
    }

    /// <summary>Marks a checkpoint folder as written by run <paramref name="runId"/>.</summary>
    public static void MarkCheckpoint(string checkpointDirectory, string runId) => Write(checkpointDirectory, new Marker(Format, runId, Completed: true));

    /// <summary>The size of the model a finished run trained, as <see cref="Complete"/> recorded it (zeros when unknown).</summary>
    public static ModelSize SizeIn(string metricsDirectory) => Read(metricsDirectory)?.Size ?? new ModelSize(0, 0);

    /// <summary>Marks the run finished, with its model's size, and drops the trainer's state, which only a resumption needs.</summary>
    public static void Complete(string metricsDirectory, string stateDirectory, string runId, ModelSize size)
    {
        Write(metricsDirectory, new Marker(Format, runId, Completed: true) { Size = size });
        if (Directory.Exists(stateDirectory)) Directory.Delete(stateDirectory, recursive: true);
    }

    /// <summary>The steps of a run's history, once each: a resumption repeats the steps after its last checkpoint, and the later record wins.</summary>
    public static IReadOnlyList<TrainingStepMetrics> FinalSteps(TrainingHistory history) =>
        [.. history.Steps.GroupBy(s => s.Position.GlobalStep).Select(g => g.Last()).OrderBy(s => s.Position.GlobalStep)];

    /// <summary>Non-padding tokens per second over the steps (their elapsed time counts from the last resumption).</summary>
    public static double TokensPerSecond(IReadOnlyList<TrainingStepMetrics> steps) =>
        steps.Count == 0 || steps[^1].ElapsedSeconds <= 0 ? 0 : steps.Sum(s => (double)s.Tokens) / steps[^1].ElapsedSeconds;

    private static Marker? Read(string directory)
    {
        string file = RunFolder.TrainingRunFile(directory);
        if (!File.Exists(file)) return null;
        try
        {
            return JsonSerializer.Deserialize<Marker>(File.ReadAllText(file), TrainingSummary.Json);
        }
        catch (JsonException e)
        {
            throw new ExperimentException($"'{file}' is not a readable training-run marker ({Serialization.UserText.Excerpt(e.Message)}); run the train step again.", e);
        }
    }

    private static void Write(string directory, Marker marker)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(RunFolder.TrainingRunFile(directory), JsonSerializer.Serialize(marker, TrainingSummary.Json));
    }
}
