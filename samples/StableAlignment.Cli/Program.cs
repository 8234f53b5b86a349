using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using StableAlignment.Cli;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Experiment;
using StableAlignment.Core.Models;
using StableAlignment.Embeddings.MiniLM;
using StableAlignment.Plots;
using StableAlignment.Sandbox.Orleans;

// stable-alignment: the whole Stable Alignment experiment in one command (simulate, build-dataset, train, evaluate,
// report), or any one step on its own. The library does the work; this host parses arguments, picks the model
// back-ends and draws the progress.
var outOption = new Option<string>("--out") { Description = "Run folder: every step reads and writes here.", DefaultValueFactory = _ => "stable-alignment-run" };
var quickOption = new Option<bool>("--quick") { Description = "Smaller world and model: the whole run takes well under two minutes." };
var seedOption = new Option<int?>("--seed") { Description = "Seed of the society, the data split and the model (default 42)." };
var gridOption = new Option<int?>("--grid") { Description = "Grid side N of the society (N x N agents)." };
var roundsOption = new Option<int?>("--rounds") { Description = "Rounds to simulate." };
var agentsOption = new Option<string?>("--agents") { Description = $"Language model of the social agents: {ChatBackends.Help}. Default: the offline society." };
var questionsOption = new Option<string?>("--questions") { Description = "Question file, one per line (e.g. HH-RLHF prompts). Default: the built-in scenario bank." };
var releasedOption = new Option<string?>("--released") { Description = "Build the dataset from a released-format file (JSON array or JSON Lines) instead of the sandbox log." };
var initOption = new Option<string?>("--init-from") { Description = "Start from a Hugging Face safetensors checkpoint folder (LLaMA, Qwen2 or SmolLM; config.json, *.safetensors, tokenizer.json)." };
var taskOption = new Option<string[]>("--task") { Description = $"Multiple-choice task file to evaluate on, repeatable: {TaskCatalog.Help}.", AllowMultipleArgumentsPerToken = true };
var epochsOption = new Option<int?>("--epochs") { Description = "Epochs per training stage." };
var marginOption = new Option<double?>("--margin") { Description = "Margin M of the ranking hinge (default 10, the reference README's value)." };
var weightOption = new Option<double?>("--ranking-weight") { Description = "Weight lambda of the ranking term (default 0.5)." };
var engineOption = new Option<string>("--engine") { Description = "Where the society runs: in-process, or orleans (agents as grains across silos; the same log).", DefaultValueFactory = _ => "in-process" };
engineOption.AcceptOnlyFromAmong("in-process", "orleans");
var silosOption = new Option<int?>("--silos") { Description = "With --engine orleans: silos to start in this process on loopback (default 2)." };
var clusterOption = new Option<string?>("--cluster") { Description = "An Orleans cluster's PostgreSQL database: postgres://user:password@host:port/database." };
var siloPortOption = new Option<int>("--silo-port") { Description = "This silo's silo-to-silo port (its gateway port is the next one).", DefaultValueFactory = _ => 11111 };
var judgeOption = new Option<string?>("--judge") { Description = $"Judge model: {ChatBackends.Help}. Default: the offline society's rater." };
var loraOption = new Option<string?>("--lora") { Description = "Train LoRA adapters instead of every parameter, optionally with r=…,alpha=…,dropout=…,targets=q_proj+v_proj,rslora=true (default r=16, alpha=32).", Arity = ArgumentArity.ZeroOrOne };
var variantOption = new Option<string>("--variant") { Description = "The trained variant to export, e.g. IL+SC+RA.", Required = true };
var formatOption = new Option<string>("--format") { Description = "hf (Hugging Face safetensors), gguf (llama.cpp, Ollama) or peft (a LoRA variant's adapter).", Required = true };
var toOption = new Option<string>("--to") { Description = "The folder (hf, peft) or file (gguf) to write.", Required = true };
var dtypeOption = new Option<string?>("--dtype") { Description = "f32, f16, bf16 (hf, peft) or q8_0 (gguf). Default: f16 for gguf, f32 otherwise." };

ExperimentOptions Options(ParseResult r)
{
    var o = r.GetValue(quickOption) ? ExperimentOptions.Quick : ExperimentOptions.Default;
    if (r.GetValue(seedOption) is int seed) o = o with { Seed = seed };
    if (r.GetValue(gridOption) is int grid) o = o with { Sandbox = o.Sandbox with { GridSize = grid } };
    if (r.GetValue(roundsOption) is int rounds) o = o with { Rounds = rounds };
    if (r.GetValue(releasedOption) is string released) o = o with { ReleasedDataset = released };
    if (r.GetValue(initOption) is string init) o = o with { Model = o.Model with { InitFrom = init } };
    if (r.GetValue(epochsOption) is int epochs) o = o with { Training = o.Training with { Epochs = epochs } };
    if (r.GetValue(marginOption) is double margin) o = o with { Training = o.Training with { Loss = o.Training.Loss with { Margin = margin } } };
    if (r.GetValue(weightOption) is double weight) o = o with { Training = o.Training with { Loss = o.Training.Loss with { RankingWeight = weight } } };
    if (r.GetValue(taskOption) is { Length: > 0 } tasks) o = o with { Evaluation = o.Evaluation with { Tasks = [.. tasks.Select(TaskSpec.Parse)] } };
    if (r.GetResult(loraOption) is not null)
    {
        var lora = LoraOptions.Parse(r.GetValue(loraOption));
        o = o with { Variants = [.. o.Variants.Select(v => v with { Lora = lora })] };
    }
    return o;
}

// A silo runs the agents on the model given by --agents (default: the offline society), with MiniLM embeddings.
OrleansSandboxSiloOptions SiloOptions(ParseResult r) => new()
{
    AgentClient = r.GetValue(agentsOption) is string spec ? _ => ChatBackends.Create(spec) : new OrleansSandboxSiloOptions().AgentClient,
    Embeddings = () => new MiniLmEmbeddingGenerator(),
    Calls = Options(r).Calls,
};

// The host's choices: real models when asked for, MiniLM embeddings and the plots.
async Task<int> WithExperiment(ParseResult r, Func<StableAlignmentExperiment, Task> action) => await Terminal.Guarded(async () =>
{
    if (r.GetValue(engineOption) != "orleans" && (r.GetValue(silosOption) is not null || r.GetValue(clusterOption) is not null))
        throw new ArgumentException("--silos and --cluster need --engine orleans.");
    await using var cluster = r.GetValue(engineOption) != "orleans" ? null
        : r.GetValue(clusterOption) is string address ? await OrleansSandboxHost.ConnectAsync(address)
        : await OrleansSandboxHost.StartLocalAsync(r.GetValue(silosOption) ?? 2, SiloOptions(r), Path.Combine(r.GetValue(outOption)!, "orleans"));
    using var agents = r.GetValue(agentsOption) is string a ? ChatBackends.Create(a) : null;
    using var judge = r.GetValue(judgeOption) is string j ? ChatBackends.Create(j) : null;
    var backends = new ExperimentBackends
    {
        Agents = agents,
        Judge = judge,
        Questions = r.GetValue(questionsOption) is string q ? StableAlignment.Core.Sandbox.QuestionSource.FromFile(q) : null,
        SandboxEngine = cluster?.Engine,
    }.WithMiniLmEmbeddings().WithPlots();
    await action(new StableAlignmentExperiment(Options(r), r.GetValue(outOption)!, backends));
});

Command Step(string name, string description, Option[] options, Func<StableAlignmentExperiment, CancellationToken, Task> run)
{
    var command = new Command(name, description);
    foreach (var o in options.Prepend(quickOption).Prepend(outOption)) command.Options.Add(o);
    command.SetAction((r, ct) => WithExperiment(r, e => run(e, ct)));
    return command;
}

var root = new RootCommand("Stable Alignment: simulate a society, build alignment data, train in three stages, evaluate, report.");
foreach (var o in new Option[] { outOption, quickOption, seedOption, gridOption, roundsOption, agentsOption, questionsOption, releasedOption, initOption, epochsOption, marginOption, weightOption, taskOption, judgeOption, loraOption })
    root.Options.Add(o);
root.Subcommands.Add(Step("simulate", "Run the Sandbox society into the SQLite log (resumes an interrupted run).",
    [seedOption, gridOption, roundsOption, agentsOption, questionsOption, engineOption, silosOption, clusterOption], Terminal.SimulateAsync));
var silo = new Command("silo", "Run one silo of an Orleans cluster (PostgreSQL membership and storage) until Ctrl+C; `simulate --engine orleans --cluster` runs on it.");
foreach (var o in new Option[] { clusterOption, siloPortOption, agentsOption }) silo.Options.Add(o);
silo.SetAction((r, ct) => Terminal.Guarded(async () =>
{
    if (r.GetValue(clusterOption) is not string address) throw new ArgumentException("silo needs --cluster postgres://user:password@host:port/database.");
    int port = r.GetValue(siloPortOption);
    Console.WriteLine($"silo on ports {port}/{port + 1} of {address.Split('@')[^1]}; Ctrl+C stops it");
    await OrleansSandboxHost.RunSiloAsync(address, SiloOptions(r), new OrleansSiloEndpoint(port, port + 1), cancellationToken: ct);
}));
root.Subcommands.Add(silo);
root.Subcommands.Add(Step("build-dataset", "Build imitation, self-critic and realignment samples, split by query.",
    [seedOption, releasedOption], Terminal.BuildDatasetAsync));
root.Subcommands.Add(Step("train", "Train the SFT-only baseline and IL, IL+SC, IL+SC+RA.",
    [seedOption, initOption, epochsOption, marginOption, weightOption, loraOption], Terminal.TrainAsync));
root.Subcommands.Add(Step("evaluate", "Evaluate every variant: held-out ranking, judge scores (HH, HH-A), multiple-choice tasks.",
    [seedOption, taskOption, judgeOption], Terminal.EvaluateAsync));
root.Subcommands.Add(Step("report", "Write report.md and the plots from the evaluation files.", [], Terminal.ReportAsync));
var export = new Command("export", "Export a trained variant to Hugging Face safetensors, GGUF or a PEFT adapter.");
foreach (var o in new Option[] { outOption, variantOption, formatOption, toOption, dtypeOption }) export.Options.Add(o);
export.SetAction((r, ct) => Terminal.Guarded(() => Terminal.ExportAsync(new StableAlignmentExperiment(ExperimentOptions.Default, r.GetValue(outOption)!),
    r.GetValue(variantOption)!, ExportNames.ParseFormat(r.GetValue(formatOption)!), r.GetValue(dtypeOption) is string d ? ExportNames.ParseDType(d) : null, r.GetValue(toOption)!, ct)));
root.Subcommands.Add(export);
root.SetAction((r, ct) => WithExperiment(r, async e =>
{
    var clock = Stopwatch.StartNew();
    string[] titles = ["simulate", "build-dataset", "train", "evaluate", "report"];
    Func<StableAlignmentExperiment, CancellationToken, Task>[] steps = [Terminal.SimulateAsync, Terminal.BuildDatasetAsync, Terminal.TrainAsync, Terminal.EvaluateAsync, Terminal.ReportAsync];
    for (int i = e.Options.ReleasedDataset is null ? 0 : 1; i < steps.Length; i++)
    {
        Terminal.Rule($"{i + 1}/5 {titles[i]}");
        await steps[i](e, ct);
    }
    AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture, $"[bold green]Done in {clock.Elapsed.TotalSeconds:F0} s.[/] Report: {e.Folder.Report}");
}));

return await root.Parse(args).InvokeAsync();
