namespace StableAlignment.Cli;

/// <summary>The sizes of a pipeline run. <see cref="Default"/> fits in about ten minutes on two cores, <see cref="Quick"/> in two.</summary>
internal sealed record RunSettings
{
    public int GridSize { get; init; } = 6;
    public int Rounds { get; init; } = 80;
    public double ValidationFraction { get; init; } = 0.25;
    public int Epochs { get; init; } = 2;
    public int HiddenSize { get; init; } = 128;
    public int Layers { get; init; } = 2;
    public int MaxLength { get; init; } = 192;
    public int GroupsPerBatch { get; init; } = 8;
    public double LearningRate { get; init; } = 3e-3;
    public double LaterStageLearningRateScale { get; init; } = 0.3;
    public double Margin { get; init; } = 10;
    public double RankingWeight { get; init; } = 0.5;
    public int JudgePrompts { get; init; } = 32;
    public int MaxNewTokens { get; init; } = 40;
    public int MultipleChoiceItems { get; init; } = 200;
    public int Seed { get; init; } = 42;

    public static RunSettings Default { get; } = new();

    public static RunSettings Quick { get; } = new()
    {
        GridSize = 4,
        Rounds = 24,
        Epochs = 2,
        HiddenSize = 96,
        JudgePrompts = 12,
        MaxNewTokens = 24,
        MultipleChoiceItems = 60,
    };
}

/// <summary>Where each step reads and writes inside the run folder, so any step can run on its own.</summary>
internal sealed class RunLayout(string root)
{
    public string Root { get; } = Path.GetFullPath(root);
    public string SandboxLog => Path.Combine(Root, "sandbox.db");
    public string DatasetDirectory => Path.Combine(Root, "dataset");
    public string TrainFile => Path.Combine(DatasetDirectory, "train.json");
    public string ValidationFile => Path.Combine(DatasetDirectory, "validation.json");
    public string VocabularyFile => Path.Combine(DatasetDirectory, "vocabulary.json");
    public string CheckpointDirectory(string variant) => Path.Combine(Root, "checkpoints", variant);
    public string MetricsDirectory(string variant) => Path.Combine(Root, "metrics", variant);
    public string TrainingSummary => Path.Combine(Root, "training.json");
    public string EvaluationDirectory => Path.Combine(Root, "evaluation");
    public string EvaluationSummary => Path.Combine(EvaluationDirectory, "summary.json");
    public string Report => Path.Combine(Root, "report.md");
    public string PlotsDirectory => Path.Combine(Root, "plots");

    /// <summary>Fails with a message naming the step to run first when an input is missing.</summary>
    public static string Require(string path, string producedBy)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new UserFacingException($"'{path}' does not exist: run `{producedBy}` first (or pass the file explicitly).");
        return path;
    }
}

/// <summary>An error the CLI reports as one line, without a stack trace.</summary>
internal sealed class UserFacingException(string message) : Exception(message);
