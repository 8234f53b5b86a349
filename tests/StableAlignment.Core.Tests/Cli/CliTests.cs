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

    /// <summary>The whole main job in its quick mode: simulate, build, train four variants, evaluate, report.</summary>
    [Fact]
    public void The_quick_run_writes_a_report_whose_table_matches_the_per_item_results()
    {
        using var dir = new TempFolder();
        var run = CliProcess.Run(TimeSpan.FromMinutes(30), "--quick", "--out", dir.Path);
        Assert.True(run.ExitCode == 0, run.Output);

        string report = File.ReadAllText(Path.Combine(dir.Path, "report.md"));
        foreach (var variant in new[] { "sft-baseline", "| IL |", "IL+SC", "IL+SC+RA" }) Assert.Contains(variant, report, StringComparison.Ordinal);
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
