using System.Net;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Experiment;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Tests.ChatClients;

namespace StableAlignment.Core.Tests.Experiment;

/// <summary>A society simulated, built and trained once, with the tiny options; each test works on a copy.</summary>
public sealed class TrainedRunFolder : IAsyncLifetime, IDisposable
{
    private readonly TempFolder _dir = new();

    public static ExperimentOptions Options { get; } = StableAlignmentExperimentTests.Tiny with
    {
        // No retries and no outage tolerance: a failing judge stops evaluation at once.
        Calls = new StableAlignment.Core.ModelCalls.ModelCallOptions { MaxRetries = 0, OutageTolerance = TimeSpan.Zero },
    };

    public static ExperimentBackends Backends { get; } = new() { Questions = QuestionSource.FromEnumerable(QuestionSource.BuiltIn().Questions.Take(12)) };

    public string Path => _dir.Path;

    public async Task InitializeAsync()
    {
        var experiment = new StableAlignmentExperiment(Options, _dir.Path, Backends);
        await experiment.SimulateAsync();
        await experiment.BuildDatasetAsync();
        await experiment.TrainAsync();
    }

    public Task DisposeAsync()
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>A copy of the trained folder.</summary>
    internal TempFolder Copy()
    {
        var copy = new TempFolder();
        foreach (string file in Directory.EnumerateFiles(_dir.Path, "*", SearchOption.AllDirectories))
        {
            string target = System.IO.Path.Combine(copy.Path, System.IO.Path.GetRelativePath(_dir.Path, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return copy;
    }
}

/// <summary>The run folder's safety: one process at a time, no empty leftovers, no mixed training runs, an evaluation that resumes.</summary>
public sealed class RunFolderSafetyTests(TrainedRunFolder trained) : IClassFixture<TrainedRunFolder>
{
    /// <summary>The offline judge, counting its calls, failing with "connection refused" from call <paramref name="failFrom"/> on.</summary>
    private sealed class CountingJudge(int failFrom = int.MaxValue) : DelegatingChatClient(new SocietyJudgeChatClient(SocietyJudgeFixture.Judge))
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _calls) >= failFrom
                ? throw new HttpRequestException("Connection refused (127.0.0.1:9)")
                : base.GetResponseAsync(messages, options, cancellationToken);
    }

    private static StableAlignmentExperiment Experiment(string path, IChatClient? judge = null, ExperimentOptions? options = null) =>
        new(options ?? TrainedRunFolder.Options, path, TrainedRunFolder.Backends with { Judge = judge });

    [Fact]
    public async Task A_second_process_on_the_same_folder_fails_at_once_before_any_model_call()
    {
        using var dir = new TempFolder();
        var agents = new ScriptedChatClient(_ => throw new InvalidOperationException("no model call may be made"));
        var experiment = new StableAlignmentExperiment(TrainedRunFolder.Options, dir.Path, new ExperimentBackends { Agents = agents });
        // The lock is a file lock (flock on Unix), so it holds across processes just as here; the CLI tests show that.
        using (RunFolderLock.Acquire(experiment.Folder))
        {
            var ex = await Assert.ThrowsAsync<RunFolderInUseException>(() => experiment.SimulateAsync());
            Assert.Contains(experiment.Folder.Root, ex.Message, StringComparison.Ordinal);
        }
        Assert.Equal(0, agents.Calls);
    }

    [Fact]
    public async Task A_step_that_fails_at_once_leaves_no_empty_folder_behind()
    {
        using var dir = new TempFolder();
        string fresh = System.IO.Path.Combine(dir.Path, "fresh");
        var experiment = Experiment(fresh);
        await Assert.ThrowsAsync<ExperimentException>(() => experiment.BuildDatasetAsync());
        await Assert.ThrowsAsync<ExperimentException>(() => experiment.TrainAsync());
        await Assert.ThrowsAsync<ExperimentException>(() => experiment.EvaluateAsync());
        await Assert.ThrowsAsync<ExperimentException>(() => experiment.WriteReportAsync());
        Assert.False(Directory.Exists(fresh), string.Join(", ", Directory.Exists(fresh) ? Directory.EnumerateFileSystemEntries(fresh, "*", SearchOption.AllDirectories) : []));
    }

    [Fact]
    public async Task Checkpoints_of_two_training_runs_are_refused_and_the_interrupted_train_resumes_from_its_last_checkpoint()
    {
        using var dir = trained.Copy();
        var first = await TrainingSummaryOf(dir.Path);
        Assert.NotNull(first.RunId);
        foreach (var v in first.Variants) Assert.Equal(first.RunId, TrainingRun.IdIn(System.IO.Path.Combine(dir.Path, v.Checkpoint)));
        await Experiment(dir.Path).EvaluateAsync();
        string judged = new RunFolder(dir.Path).JudgedFile;
        int judgedLines = File.ReadAllLines(judged).Length;

        // Another training run (two epochs), interrupted after three steps: its first checkpoints replace the old ones.
        var longer = TrainedRunFolder.Options with { Training = TrainedRunFolder.Options.Training with { Epochs = 2 } };
        using var cts = new CancellationTokenSource();
        int steps = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Experiment(dir.Path, options: longer).TrainAsync(
            new SyncProgress<ExperimentProgress>(p =>
            {
                if (p.Step == ExperimentStep.Train && ++steps == 3) cts.Cancel();
            }), cts.Token));
        var refused = await Assert.ThrowsAsync<ExperimentException>(() => Experiment(dir.Path).EvaluateAsync());
        Assert.Contains("the last train was interrupted", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Run the train step again", refused.Message, StringComparison.Ordinal);

        // The same command again resumes: the first step it reports is the one after the checkpoint, not step 1.
        long firstStep = 0;
        var resumed = await Experiment(dir.Path, options: longer).TrainAsync(new SyncProgress<ExperimentProgress>(p =>
        {
            if (p.Step == ExperimentStep.Train && firstStep == 0) firstStep = p.Done;
        }));
        Assert.Equal(4, firstStep);
        Assert.NotEqual(first.RunId, resumed.RunId);
        foreach (var v in resumed.Variants) Assert.Equal(resumed.RunId, TrainingRun.IdIn(System.IO.Path.Combine(dir.Path, v.Checkpoint)));
        // The first run's judgements are stale once its checkpoints are replaced: evaluation starts them afresh.
        await Experiment(dir.Path, options: longer).EvaluateAsync();
        var lines = File.ReadAllLines(judged);
        Assert.Equal(judgedLines, lines.Length);
        Assert.All(lines, l => Assert.Contains("training_run=" + resumed.RunId, l, StringComparison.Ordinal));

        // A finished run is not trained again.
        int again = 0;
        await Experiment(dir.Path, options: longer).TrainAsync(new SyncProgress<ExperimentProgress>(p => again += p.Step == ExperimentStep.Train ? 1 : 0));
        Assert.Equal(0, again);
    }

    private static async Task<TrainingSummary> TrainingSummaryOf(string path) =>
        await TrainingSummary.ReadAsync<TrainingSummary>(new RunFolder(path).TrainingSummary, "train", CancellationToken.None);

    [Fact]
    public async Task An_evaluation_whose_judge_goes_away_keeps_every_judged_answer_and_resumes_without_asking_again()
    {
        using var clean = trained.Copy();
        var cleanJudge = new CountingJudge();
        await Experiment(clean.Path, cleanJudge).EvaluateAsync();
        var folder = new RunFolder(clean.Path);
        string expected = File.ReadAllText(folder.JudgedFile);
        int total = cleanJudge.Calls;
        Assert.True(total >= 8, $"{total} judge calls");

        using var dir = trained.Copy();
        var failing = new CountingJudge(failFrom: 6);
        var ex = await Assert.ThrowsAsync<StableAlignment.Core.ModelCalls.ModelServerUnavailableException>(() => Experiment(dir.Path, failing).EvaluateAsync());
        Assert.Contains("Connection refused", ex.Message, StringComparison.Ordinal);
        string judged = new RunFolder(dir.Path).JudgedFile;
        Assert.Equal(5, File.ReadAllLines(judged).Length);

        // A write cut off by a kill leaves half a line; it is dropped, the whole lines are kept.
        File.AppendAllText(judged, "{\"model\": \"sft-base");
        var healthy = new CountingJudge();
        await Experiment(dir.Path, healthy).EvaluateAsync();
        Assert.Equal(total - 5, healthy.Calls);
        Assert.Equal(expected, File.ReadAllText(judged));
        Assert.Equal(File.ReadAllText(folder.ItemResultsFile), File.ReadAllText(new RunFolder(dir.Path).ItemResultsFile));

        // Judged with other settings: refused by name, not mixed in.
        var other = TrainedRunFolder.Options with { Evaluation = TrainedRunFolder.Options.Evaluation with { MaxNewTokens = 5 } };
        var mismatch = await Assert.ThrowsAsync<ExperimentException>(() => Experiment(dir.Path, new CountingJudge(), other).EvaluateAsync());
        Assert.Contains("max_new_tokens was '4', this run has '5'", mismatch.Message, StringComparison.Ordinal);

        // A line that is not a judged answer is reported with its number.
        File.WriteAllText(judged, File.ReadAllLines(judged)[0] + "\n{\"model\": 3}\n");
        var corrupted = await Assert.ThrowsAsync<ExperimentException>(() => Experiment(dir.Path, new CountingJudge()).EvaluateAsync());
        Assert.Contains("line 2", corrupted.Message, StringComparison.Ordinal);
    }
}
