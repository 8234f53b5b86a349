namespace StableAlignment.Core.Experiment;

/// <summary>
/// The layout of an experiment's run folder, and the only place that knows its file names:
/// <c>sandbox.db</c>, <c>dataset/</c>, <c>checkpoints/</c>, <c>metrics/</c>, <c>training.json</c>,
/// <c>evaluation/</c>, <c>plots/</c>, <c>report.md</c>, the log <c>run.log</c>, the lock <c>run.lock</c> and, for every
/// training seed after the first, <c>seeds/&lt;seed&gt;/</c> (see <see cref="ForSeed"/>). Each step reads what the step
/// before wrote here, so any step can run on its own, on your own data placed where the step expects it.
/// </summary>
public sealed class RunFolder
{
    /// <summary>Creates the layout of a folder (nothing is created on disk yet).</summary>
    /// <param name="root">The run folder.</param>
    public RunFolder(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
    }

    /// <summary>The run folder, as a full path.</summary>
    public string Root { get; }

    /// <summary>The sandbox's durable SQLite log (step 1).</summary>
    public string SandboxLog => Path.Combine(Root, "sandbox.db");

    /// <summary>The dataset folder (step 2).</summary>
    public string DatasetDirectory => Path.Combine(Root, "dataset");

    /// <summary>The training queries, in the released format.</summary>
    public string TrainFile => Path.Combine(DatasetDirectory, "train.json");

    /// <summary>The held-out queries, in the released format.</summary>
    public string ValidationFile => Path.Combine(DatasetDirectory, "validation.json");

    /// <summary>The compact vocabulary the tiny model is trained over.</summary>
    public string VocabularyFile => Path.Combine(DatasetDirectory, "vocabulary.json");

    /// <summary>The dataset's statistics as text.</summary>
    public string StatisticsFile => Path.Combine(DatasetDirectory, "statistics.txt");

    /// <summary>The checkpoint folder of one variant (step 3).</summary>
    /// <param name="variant">The variant.</param>
    /// <returns>The folder.</returns>
    public string CheckpointDirectory(ExperimentVariant variant)
    {
        ArgumentNullException.ThrowIfNull(variant);
        return Path.Combine(Root, "checkpoints", variant.FolderName);
    }

    /// <summary>
    /// Where DPO's frozen reference, the model after the run's SFT phase, is saved when no variant takes that stage
    /// (step 3): <c>checkpoints/&lt;run&gt;.reference/</c>.
    /// </summary>
    /// <param name="run">The run's last variant.</param>
    /// <returns>The folder.</returns>
    public string ReferenceDirectory(ExperimentVariant run)
    {
        ArgumentNullException.ThrowIfNull(run);
        return Path.Combine(Root, "checkpoints", run.FolderName + ".reference");
    }

    /// <summary>
    /// The folder of training seed <paramref name="seed"/>, run <paramref name="index"/>: this folder for the first
    /// run, <c>seeds/&lt;seed&gt;/</c> below it for the others. A seed's folder holds its own <c>checkpoints/</c>,
    /// <c>metrics/</c>, <c>training.json</c> and <c>evaluation/</c>; the society, the dataset and the report are the run's.
    /// </summary>
    /// <param name="index">The run's index, from 0.</param>
    /// <param name="seed">Its training seed.</param>
    /// <returns>The seed's folder.</returns>
    public RunFolder ForSeed(int index, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return index == 0 ? this : new RunFolder(Path.Combine(Root, "seeds", seed.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>The metrics folder of one training run, named after its last variant.</summary>
    /// <param name="run">The run's last variant.</param>
    /// <returns>The folder.</returns>
    public string MetricsDirectory(ExperimentVariant run)
    {
        ArgumentNullException.ThrowIfNull(run);
        return Path.Combine(Root, "metrics", run.FolderName);
    }

    /// <summary>What training recorded for the later steps: variants, loss options, batch recipe.</summary>
    public string TrainingSummary => Path.Combine(Root, "training.json");

    /// <summary>The evaluation folder (step 4).</summary>
    public string EvaluationDirectory => Path.Combine(Root, "evaluation");

    /// <summary>Per-item results of every task and variant (JSON Lines).</summary>
    public string ItemResultsFile => Path.Combine(EvaluationDirectory, "items.jsonl");

    /// <summary>Every judged answer (JSON Lines).</summary>
    public string JudgedFile => Path.Combine(EvaluationDirectory, "judged.jsonl");

    /// <summary>The judge summaries of every variant.</summary>
    public string EvaluationSummary => Path.Combine(EvaluationDirectory, "summary.json");

    /// <summary>The report's plots.</summary>
    public string PlotsDirectory => Path.Combine(Root, "plots");

    /// <summary>The report (step 5).</summary>
    public string Report => Path.Combine(Root, "report.md");

    /// <summary>The log of every step: retries, stalls, outages, the sandbox's rounds (information and above, appended).</summary>
    public string LogFile => Path.Combine(Root, "run.log");

    /// <summary>The lock a running step holds, so that a second process on the same folder fails at once.</summary>
    public string LockFile => Path.Combine(Root, "run.lock");

    /// <summary>The file in a checkpoint or metrics folder that says which training run wrote it.</summary>
    /// <param name="directory">A checkpoint or metrics folder.</param>
    /// <returns>The file.</returns>
    public static string TrainingRunFile(string directory) => Path.Combine(directory, "training-run.json");

    /// <summary>Where the trainer keeps its resumable state (weights, optimizer, position) of one training run while it trains.</summary>
    /// <param name="run">The run's last variant.</param>
    /// <returns>The folder.</returns>
    public string TrainerStateDirectory(ExperimentVariant run) => Path.Combine(MetricsDirectory(run), "resume");

    /// <summary>The path of <paramref name="path"/> relative to <see cref="Root"/>, with '/' separators (for links in the report).</summary>
    /// <param name="path">A path inside the run folder.</param>
    /// <returns>The relative path.</returns>
    public string Relative(string path) => Path.GetRelativePath(Root, path).Replace(Path.DirectorySeparatorChar, '/');

    /// <summary>Fails with a message naming the step to run first when an input is missing.</summary>
    /// <param name="path">The file or folder a step needs.</param>
    /// <param name="producedBy">The step (or option) that produces it.</param>
    /// <returns><paramref name="path"/>.</returns>
    /// <exception cref="ExperimentException">It does not exist.</exception>
    public static string Require(string path, string producedBy)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new ExperimentException($"'{path}' does not exist: run the {producedBy} step first, or give the file explicitly.");
        return path;
    }

    /// <summary>Fails with a message naming what the user gave when a file or folder they named is missing.</summary>
    /// <param name="path">The file or folder.</param>
    /// <param name="what">What it is, e.g. "the released dataset".</param>
    /// <returns><paramref name="path"/>.</returns>
    /// <exception cref="ExperimentException">It does not exist.</exception>
    internal static string RequireGiven(string path, string what)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new ExperimentException($"'{path}' ({what}) does not exist: check the path.");
        return path;
    }
}

/// <summary>Another process is running a step in the same run folder; nothing was done.</summary>
public sealed class RunFolderInUseException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RunFolderInUseException() { }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public RunFolderInUseException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public RunFolderInUseException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A problem with an experiment's inputs or run folder that the user can fix; the message says what to do.</summary>
public sealed class ExperimentException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ExperimentException() { }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public ExperimentException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public ExperimentException(string message, Exception innerException) : base(message, innerException) { }
}
