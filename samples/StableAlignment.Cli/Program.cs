using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using StableAlignment.Cli;
using StableAlignment.Cli.Steps;

// stable-alignment: the whole Stable Alignment loop in one command (simulate, build-dataset, train, evaluate, report),
// or any one step on its own. Each step reads the previous step's files from the run folder.
var outOption = new Option<string>("--out") { Description = "Run folder: every step reads and writes here.", DefaultValueFactory = _ => "stable-alignment-run" };
var quickOption = new Option<bool>("--quick") { Description = "Smaller world and model: the whole run takes under two minutes." };
var seedOption = new Option<int?>("--seed") { Description = "Seed of the society, the data split and the model (default 42)." };
var gridOption = new Option<int?>("--grid") { Description = "Grid side N of the society (N x N agents)." };
var roundsOption = new Option<int?>("--rounds") { Description = "Rounds to simulate." };
var agentsOption = new Option<string?>("--agents") { Description = $"Language model of the social agents: {ChatBackends.Help}. Default: the offline society." };
var questionsOption = new Option<string?>("--questions") { Description = "Question file, one per line (e.g. HH-RLHF prompts). Default: the built-in scenario bank." };
var releasedOption = new Option<string?>("--released") { Description = "Build the dataset from a released-format file (JSON array or JSON Lines) instead of the sandbox log." };
var initOption = new Option<string?>("--init-from") { Description = "Start from a Hugging Face safetensors checkpoint folder (LLaMA, Qwen2 or SmolLM; config.json, *.safetensors, tokenizer.json)." };
var taskOption = new Option<string[]>("--task") { Description = $"Multiple-choice task file to evaluate on, repeatable: {TaskSpecs.Help}.", AllowMultipleArgumentsPerToken = true };
var epochsOption = new Option<int?>("--epochs") { Description = "Epochs per training stage." };
var marginOption = new Option<double?>("--margin") { Description = "Margin M of the ranking hinge (default 10, the reference README's value)." };
var weightOption = new Option<double?>("--ranking-weight") { Description = "Weight lambda of the ranking term (default 0.5)." };
var judgeOption = new Option<string?>("--judge") { Description = $"Judge model: {ChatBackends.Help}. Default: the offline society's rater." };

RunSettings Settings(ParseResult r)
{
    var s = r.GetValue(quickOption) ? RunSettings.Quick : RunSettings.Default;
    s = r.GetValue(seedOption) is int seed ? s with { Seed = seed } : s;
    s = r.GetValue(gridOption) is int grid ? s with { GridSize = grid } : s;
    s = r.GetValue(epochsOption) is int epochs ? s with { Epochs = epochs } : s;
    s = r.GetValue(marginOption) is double margin ? s with { Margin = margin } : s;
    s = r.GetValue(weightOption) is double weight ? s with { RankingWeight = weight } : s;
    return r.GetValue(roundsOption) is int rounds ? s with { Rounds = rounds } : s;
}

RunLayout Layout(ParseResult r) => new(r.GetValue(outOption)!);

Command Step(string name, string description, Option[] options, Func<ParseResult, CancellationToken, Task> action)
{
    var command = new Command(name, description);
    foreach (var o in options.Prepend(quickOption).Prepend(outOption)) command.Options.Add(o);
    command.SetAction((r, ct) => Guarded(() => action(r, ct)));
    return command;
}

var simulate = Step("simulate", "Run the Sandbox society into the SQLite log (resumes an interrupted run).",
    [seedOption, gridOption, roundsOption, agentsOption, questionsOption],
    (r, ct) => SimulateStep.RunAsync(Layout(r), Settings(r), r.GetValue(agentsOption), r.GetValue(questionsOption), ct));
var buildDataset = Step("build-dataset", "Build imitation, self-critic and realignment samples, split by query.",
    [seedOption, releasedOption],
    (r, ct) => BuildDatasetStep.RunAsync(Layout(r), Settings(r), r.GetValue(releasedOption), ct));
var train = Step("train", "Train the SFT-only baseline and IL, IL+SC, IL+SC+RA.",
    [seedOption, initOption, epochsOption, marginOption, weightOption],
    (r, ct) => TrainStep.RunAsync(Layout(r), Settings(r), r.GetValue(initOption), ct));
var evaluate = Step("evaluate", "Evaluate every variant: held-out ranking, judge scores (HH, HH-A), multiple-choice tasks.",
    [seedOption, taskOption, judgeOption, marginOption, weightOption],
    (r, ct) => EvaluateStep.RunAsync(Layout(r), Settings(r), r.GetValue(taskOption) ?? [], r.GetValue(judgeOption), ct));
var report = Step("report", "Write report.md and the plots from the evaluation files.", [],
    (r, ct) => ReportStep.RunAsync(Layout(r), ct));

var root = new RootCommand("Stable Alignment: simulate a society, build alignment data, train in three stages, evaluate, report.");
foreach (var o in new Option[] { outOption, quickOption, seedOption, gridOption, roundsOption, agentsOption, questionsOption, releasedOption, initOption, epochsOption, marginOption, weightOption, taskOption, judgeOption })
    root.Options.Add(o);
foreach (var c in new[] { simulate, buildDataset, train, evaluate, report })
    root.Subcommands.Add(c);
root.SetAction((r, ct) => Guarded(async () =>
{
    var layout = Layout(r);
    var settings = Settings(r);
    var clock = Stopwatch.StartNew();
    if (r.GetValue(releasedOption) is null)
    {
        Terminal.Step("1/5 simulate");
        await SimulateStep.RunAsync(layout, settings, r.GetValue(agentsOption), r.GetValue(questionsOption), ct);
    }
    Terminal.Step("2/5 build-dataset");
    await BuildDatasetStep.RunAsync(layout, settings, r.GetValue(releasedOption), ct);
    Terminal.Step("3/5 train");
    await TrainStep.RunAsync(layout, settings, r.GetValue(initOption), ct);
    Terminal.Step("4/5 evaluate");
    await EvaluateStep.RunAsync(layout, settings, r.GetValue(taskOption) ?? [], r.GetValue(judgeOption), ct);
    Terminal.Step("5/5 report");
    await ReportStep.RunAsync(layout, ct);
    AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture, $"[bold green]Done in {clock.Elapsed.TotalSeconds:F0} s.[/] Report: {layout.Report}");
}));

return await root.Parse(args).InvokeAsync();

// One clear message and a non-zero exit code for what a user can fix; a stack trace only for real bugs.
static async Task<int> Guarded(Func<Task> action)
{
    try
    {
        await action();
        return 0;
    }
    catch (OperationCanceledException)
    {
        AnsiConsole.MarkupLine("[yellow]Cancelled.[/] Completed work is kept; run the same command again to resume the simulation.");
        return 130;
    }
    catch (Exception e) when (e is UserFacingException or ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException
        or StableAlignment.Core.Data.AlignmentDataException or StableAlignment.Core.Evaluation.TaskFormatException or NotSupportedException
        or System.Text.Json.JsonException or HttpRequestException)
    {
        AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture, $"[red]error:[/] {e.Message}");
        return 1;
    }
}
