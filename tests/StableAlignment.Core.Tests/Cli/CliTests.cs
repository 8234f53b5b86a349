using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Cli;

public sealed class CliTests
{
    // Guards against a hung child process, not speed goals: generous enough for a heavily loaded 2-core machine.
    private static readonly TimeSpan Short = TimeSpan.FromMinutes(10);

    private static void AssertOneClearError((int ExitCode, string Output) run, string expected)
    {
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("error:", run.Output, StringComparison.Ordinal);
        Assert.Contains(expected, run.Output.Replace("\n", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Output, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public void A_step_whose_input_is_missing_names_the_step_to_run_first()
    {
        using var dir = new TempFolder();
        AssertOneClearError(CliProcess.Run(Short, "train", "--out", dir.Path), "build-dataset");
        AssertOneClearError(CliProcess.Run(Short, "evaluate", "--out", dir.Path), "build-dataset");
        AssertOneClearError(CliProcess.Run(Short, "report", "--out", dir.Path), "evaluate");
    }

    [Fact]
    public void Unreadable_files_and_bad_specs_give_one_message()
    {
        using var dir = new TempFolder();
        AssertOneClearError(CliProcess.Run(Short, "build-dataset", "--out", dir.Path, "--released", Path.Combine(dir.Path, "nope.json")), "nope.json");
        File.WriteAllText(Path.Combine(dir.Path, "bad.json"), "[{\"query\": \"q\", \"responses\": [\"a\"], \"scores\": [\"x\"]}]");
        AssertOneClearError(CliProcess.Run(Short, "build-dataset", "--out", dir.Path, "--released", Path.Combine(dir.Path, "bad.json")), "bad.json");
        AssertOneClearError(CliProcess.Run(Short, "simulate", "--out", dir.Path, "--agents", "carrier-pigeon:fast"), "carrier-pigeon");
        AssertOneClearError(CliProcess.Run(Short, "export", "--out", dir.Path, "--variant", "IL", "--format", "onnx", "--to", dir.File("m")), "onnx");
        AssertOneClearError(CliProcess.Run(Short, "train", "--out", dir.Path, "--lora", "r=zero"), "r=zero");
    }

    /// <summary>The Orleans engine from the command line: two silos in the CLI's process write the in-process log, byte for byte.</summary>
    [Fact]
    public void Simulate_on_two_orleans_silos_writes_the_in_process_log()
    {
        using var dir = new TempFolder();
        string inProcess = Path.Combine(dir.Path, "in-process"), orleans = Path.Combine(dir.Path, "orleans");
        string[] world = ["simulate", "--grid", "3", "--rounds", "2"];
        var reference = CliProcess.Run(Short, [.. world, "--out", inProcess]);
        Assert.True(reference.ExitCode == 0, reference.Output);
        var cluster = CliProcess.Run(Short, [.. world, "--out", orleans, "--engine", "orleans", "--silos", "2"]);
        Assert.True(cluster.ExitCode == 0, cluster.Output);
        Assert.Equal(File.ReadAllBytes(Path.Combine(inProcess, "sandbox.db")), File.ReadAllBytes(Path.Combine(orleans, "sandbox.db")));

        AssertOneClearError(CliProcess.Run(Short, "silo", "--cluster", "mysql://db/sandbox"), "postgres://");
        AssertOneClearError(CliProcess.Run(Short, [.. world, "--out", orleans, "--silos", "2"]), "--engine orleans");
    }

    [Fact]
    public void An_unknown_option_is_a_usage_error()
    {
        var run = CliProcess.Run(Short, "--no-such-option");
        Assert.NotEqual(0, run.ExitCode);
        Assert.DoesNotContain("   at ", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_names_the_key_variable_every_default_and_the_exit_codes()
    {
        var run = CliProcess.Run(Short, "--help");
        Assert.Equal(0, run.ExitCode);
        string help = run.Output.ReplaceLineEndings(" ");
        while (help.Contains("  ", StringComparison.Ordinal)) help = help.Replace("  ", " ", StringComparison.Ordinal);
        foreach (string part in new[]
        {
            "OPENAI_API_KEY", "(default 6; 4 with --quick)", "Rounds to simulate (default 80; 24 with --quick)", "Epochs per training stage (default 1)",
            "--outage-tolerance", "(default 60)", "--concurrency", "(default 16)", "--call-timeout", "(default 120)", "--retries", "--rate-limit",
            "--token-budget", "--observers", "--verbose", "5 model server unreachable", "2 bad command line", "4 run folder in use",
        })
        {
            Assert.Contains(part, help, StringComparison.Ordinal);
        }
        Assert.Contains("--outage-tolerance", CliProcess.Run(Short, "simulate", "--help").Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_value_is_a_usage_error_in_words_not_type_names()
    {
        var run = CliProcess.Run(Short, "simulate", "--grid", "abc");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--grid needs a whole number, got 'abc'", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", run.Output, StringComparison.Ordinal);
        var zero = CliProcess.Run(Short, "simulate", "--out", Path.Combine(Path.GetTempPath(), "sa-never-created"), "--grid", "0");
        Assert.Equal(2, zero.ExitCode);
        Assert.Contains("GridSize", zero.Output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), "sa-never-created")));
    }

    [Fact]
    public void A_failing_step_leaves_no_empty_run_folder_and_exits_with_the_input_code()
    {
        using var dir = new TempFolder();
        string fresh = Path.Combine(dir.Path, "fresh");
        foreach (string step in new[] { "build-dataset", "train", "evaluate", "report" })
        {
            var run = CliProcess.Run(Short, step, "--out", fresh);
            Assert.Equal(3, run.ExitCode);
            Assert.False(Directory.Exists(fresh), $"{step} left {fresh}");
        }
    }

    /// <summary>
    /// A stop signal mid-train waits for the trainer to stop, however long that takes: System.CommandLine's own handling
    /// gave up after two seconds and left libtorch running into the runtime's exit (a segfault, or a torch assertion).
    /// </summary>
    [Fact]
    public void A_stop_signal_mid_train_exits_as_cancelled_once_the_trainer_has_stopped()
    {
        using var dir = new TempFolder();
        foreach (string step in new[] { "simulate", "build-dataset" })
        {
            var prepared = CliProcess.Run(Short, step, "--quick", "--out", dir.Path);
            Assert.True(prepared.ExitCode == 0, prepared.Output);
        }
        // Well into the first stage, where the last step and the resume checkpoint often take more than two seconds
        // (up to 7.5 s measured): the time System.CommandLine used to wait.
        var run = CliProcess.RunAndStop(Short, line => line.Contains("imitation", StringComparison.Ordinal) && ProgressPercent(line) >= 20,
            "train", "--quick", "--out", dir.Path);
        Assert.True(run.Signalled, run.Output);
        Assert.True(run.ExitCode == 130, $"exit code {run.ExitCode}: {run.Output}");
        Assert.Contains("Cancelled. Completed work is kept", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("bug", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "training.json")), "the train was stopped before it finished");
        // What it stopped on is kept: the trainer saves its resume checkpoint after the step it was in, past the 20 %.
        string state = Path.Combine(dir.Path, "metrics", "IL-SC-RA", "resume", "trainer-state.json");
        Assert.True(File.Exists(state), run.Output);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(state));
        Assert.InRange(json.RootElement.GetProperty("Position").GetProperty("GlobalStep").GetInt32(), 2, int.MaxValue);
    }

    private static int ProgressPercent(string line)
    {
        int end = line.LastIndexOf('%');
        int begin = end;
        while (begin > 0 && char.IsAsciiDigit(line[begin - 1])) begin--;
        return end > begin ? int.Parse(line.AsSpan(begin, end - begin), System.Globalization.CultureInfo.InvariantCulture) : -1;
    }

    [Fact]
    public void A_second_process_on_the_same_run_folder_fails_at_once()
    {
        using var dir = new TempFolder();
        // This test process holds the lock, as a running stable-alignment would.
        using (StableAlignment.Core.Experiment.RunFolderLock.Acquire(new StableAlignment.Core.Experiment.RunFolder(dir.Path)))
        {
            var run = CliProcess.Run(Short, "simulate", "--out", dir.Path, "--grid", "2", "--rounds", "1");
            Assert.Equal(4, run.ExitCode);
            AssertOneClearError(run, "Another process is running a step in run folder");
        }
        Assert.False(File.Exists(Path.Combine(dir.Path, "sandbox.db")));
    }

    [Fact]
    public void Resuming_with_other_options_names_the_option_and_a_corrupted_log_is_reported_not_repaired()
    {
        using var dir = new TempFolder();
        Assert.Equal(0, CliProcess.Run(Short, "simulate", "--out", dir.Path, "--grid", "2", "--rounds", "1").ExitCode);
        var other = CliProcess.Run(Short, "simulate", "--out", dir.Path, "--grid", "3", "--rounds", "1");
        Assert.Equal(3, other.ExitCode);
        AssertOneClearError(other, "GridSize was '2', this run has '3'");

        string log = Path.Combine(dir.Path, "sandbox.db");
        File.WriteAllText(log, "SQLite format 3\0 but then garbage");
        byte[] corrupted = File.ReadAllBytes(log);
        foreach (string[] args in new[] { new[] { "simulate", "--grid", "2", "--rounds", "1" }, ["build-dataset"] })
        {
            var run = CliProcess.Run(Short, [.. args, "--out", dir.Path]);
            Assert.Equal(3, run.ExitCode);
            AssertOneClearError(run, "sandbox.db");
            Assert.Equal(corrupted, File.ReadAllBytes(log));
        }
    }

    /// <summary>The whole main job in its quick mode: simulate, build, train the paper's rows, evaluate, report.</summary>
    [Fact]
    public void The_quick_run_writes_a_report_whose_table_matches_the_per_item_results()
    {
        using var dir = new TempFolder();
        var run = CliProcess.Run(TimeSpan.FromMinutes(30), "--quick", "--out", dir.Path);
        Assert.True(run.ExitCode == 0, run.Output);

        string report = File.ReadAllText(Path.Combine(dir.Path, "report.md"));
        foreach (var variant in new[] { "| start |", "| SFT |", "| DPO |", "| RRHF |", "| IL |", "| IL+SC |", "| IL+SC+RA |" }) Assert.Contains(variant, report, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir.Path, "plots", "accuracy.png")));
        Assert.True(File.Exists(Path.Combine(dir.Path, "plots", "ratings-before-after.png")));
        Assert.True(File.Exists(Path.Combine(dir.Path, "checkpoints", "IL-SC-RA", "config.json")));

        // A trained variant leaves for llama.cpp: GGUF's magic and version 3, read here, not by the library.
        var export = CliProcess.Run(Short, "export", "--out", dir.Path, "--variant", "IL+SC+RA", "--format", "gguf", "--to", Path.Combine(dir.Path, "m.gguf"));
        Assert.True(export.ExitCode == 0, export.Output);
        var gguf = File.ReadAllBytes(Path.Combine(dir.Path, "m.gguf"));
        Assert.Equal("GGUF"u8.ToArray(), gguf[..4]);
        Assert.Equal(3, BitConverter.ToInt32(gguf, 4));

        // The table is recomputed from the per-item file, so its accuracies must be the items' own counts.
        var items = ItemResultsJsonl.Read(Path.Combine(dir.Path, "evaluation", "items.jsonl"));
        foreach (var results in items.Where(r => r.Task == RankingEvaluation.TaskName))
        {
            double accuracy = results.Items.Count(i => i.Metrics.Accuracy) / (double)results.Items.Count;
            Assert.Contains(accuracy.ToString("F3", System.Globalization.CultureInfo.InvariantCulture) + " [", report, StringComparison.Ordinal);
        }
    }
}
