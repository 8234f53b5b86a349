using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
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
// back-ends, draws the progress and turns failures into one line and an exit code.
var d = ExperimentOptions.Default;
var q = ExperimentOptions.Quick;
var outOption = new Option<string>("--out") { Description = "Run folder: every step reads and writes here.", DefaultValueFactory = _ => "stable-alignment-run" };
var quickOption = new Option<bool>("--quick") { Description = "Smaller world and model: the whole run takes well under two minutes." };
var verboseOption = new Option<bool>("--verbose") { Description = "On an error, print the stack trace too." };
var seedOption = Number<int>("--seed", $"Seed of the society, the data split and the first training seed (default {d.Seed}).");
var seedsOption = Number<int>("--seeds", $"Training seeds K: train and evaluate K times on the same data; the report gives mean ± sd (default {d.Seeds}; {q.Seeds} with --quick).");
var gridOption = Number<int>("--grid", $"Grid side N of the society, N x N agents (default {d.Sandbox.GridSize}; {q.Sandbox.GridSize} with --quick).");
var roundsOption = Number<int>("--rounds", $"Rounds to simulate (default {d.Rounds}; {q.Rounds} with --quick).");
var agentsOption = new Option<string?>("--agents") { Description = $"Language model of the social agents: {ChatBackends.Help}. Default: the offline society." };
var observersOption = new Option<string?>("--observers") { Description = $"A separate (stronger) model for the observers: {ChatBackends.Help}. Default: the agents' model." };
var questionsOption = new Option<string?>("--questions") { Description = "Question file, one per line (e.g. HH-RLHF prompts). Default: the built-in scenario bank." };
var releasedOption = new Option<string?>("--released") { Description = "Build the dataset from a released-format file (JSON array or JSON Lines) instead of the sandbox log." };
var initOption = new Option<string?>("--init-from") { Description = "Start from a Hugging Face safetensors checkpoint folder (LLaMA, Qwen2 or SmolLM; config.json, *.safetensors, tokenizer.json)." };
var taskOption = new Option<string[]>("--task") { Description = $"Multiple-choice task file to evaluate on, repeatable: {TaskCatalog.Help}.", AllowMultipleArgumentsPerToken = true };
var epochsOption = Number<int>("--epochs", $"Epochs per training stage (default {d.Training.Epochs}).");
var marginOption = Number<double>("--margin", $"Margin M of the ranking hinge (default {d.Training.Loss.Margin}, the reference README's value).");
var weightOption = Number<double>("--ranking-weight", $"Weight lambda of the ranking term (default {d.Training.Loss.RankingWeight}).");
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
var concurrencyOption = Number<int>("--concurrency", $"Model calls in flight at once, per model (default {d.Calls.MaxConcurrentCalls}).");
var timeoutOption = Number<double>("--call-timeout", $"Seconds one call attempt may take before it is retried (default {d.Calls.CallTimeout.TotalSeconds}).");
var retriesOption = Number<int>("--retries", $"Retries of a failing call at least (default {d.Calls.MaxRetries}); calls keep retrying while an outage is shorter than --outage-tolerance.");
var rateOption = Number<double>("--rate-limit", "Most call attempts per second, per model (default: no limit).");
var budgetOption = Number<long>("--token-budget", "Tokens (in + out) the society may spend; then it stops cleanly and keeps what it finished (default: no limit).");
var outageOption = Number<double>("--outage-tolerance", $"Seconds a model-server outage is ridden out before the step stops (default {d.Calls.OutageTolerance.TotalSeconds}).");

Option<T?> Number<T>(string name, string description) where T : struct, IParsable<T> => new(name)
{
    Description = description,
    CustomParser = r =>
    {
        string token = r.Tokens.Count == 1 ? r.Tokens[0].Value : "";
        if (T.TryParse(token, CultureInfo.InvariantCulture, out var value)) return value;
        r.AddError($"{name} needs a {(typeof(T) == typeof(double) ? "number" : "whole number")}, got '{token}'.");
        return null;
    },
};

ExperimentOptions Options(ParseResult r)
{
    var o = r.GetValue(quickOption) ? ExperimentOptions.Quick : ExperimentOptions.Default;
    if (r.GetValue(seedOption) is int seed) o = o with { Seed = seed };
    if (r.GetValue(seedsOption) is int seeds) o = o with { Seeds = seeds };
    if (r.GetValue(gridOption) is int grid) o = o with { Sandbox = o.Sandbox with { GridSize = grid } };
    if (r.GetValue(roundsOption) is int rounds) o = o with { Rounds = rounds };
    if (r.GetValue(releasedOption) is string released) o = o with { ReleasedDataset = released };
    if (r.GetValue(initOption) is string init) o = o with { Model = o.Model with { InitFrom = init } };
    if (r.GetValue(epochsOption) is int epochs) o = o with { Training = o.Training with { Epochs = epochs } };
    if (r.GetValue(marginOption) is double margin) o = o with { Training = o.Training with { Loss = o.Training.Loss with { Margin = margin } } };
    if (r.GetValue(weightOption) is double weight) o = o with { Training = o.Training with { Loss = o.Training.Loss with { RankingWeight = weight } } };
    if (r.GetValue(taskOption) is { Length: > 0 } tasks) o = o with { Evaluation = o.Evaluation with { Tasks = [.. tasks.Select(TaskSpec.Parse)] } };
    if (r.GetResult(loraOption) is not null && LoraOptions.Parse(r.GetValue(loraOption)) is var lora)
        o = o with { Variants = [.. o.Variants.Select(v => v with { Lora = lora })] };
    var c = o.Calls;
    if (r.GetValue(concurrencyOption) is int n) c = c with { MaxConcurrentCalls = n };
    if (r.GetValue(timeoutOption) is double timeout) c = c with { CallTimeout = TimeSpan.FromSeconds(timeout) };
    if (r.GetValue(retriesOption) is int retries) c = c with { MaxRetries = retries };
    if (r.GetValue(rateOption) is double rate) c = c with { MaxCallsPerSecond = rate };
    if (r.GetValue(budgetOption) is long budget) c = c with { TokenBudget = budget };
    if (r.GetValue(outageOption) is double outage) c = c with { OutageTolerance = TimeSpan.FromSeconds(outage) };
    return o with { Calls = c };
}

// A silo runs the agents on the model given by --agents (default: the offline society), with MiniLM embeddings.
OrleansSandboxSiloOptions SiloOptions(ParseResult r) => new()
{
    AgentClient = r.GetValue(agentsOption) is string spec ? _ => ChatBackends.Create(spec) : new OrleansSandboxSiloOptions().AgentClient,
    ObserverClient = r.GetValue(observersOption) is string observers ? _ => ChatBackends.Create(observers) : null,
    Embeddings = () => new MiniLmEmbeddingGenerator(),
    Calls = Options(r).Calls,
};

// The host's choices: real models when asked for, MiniLM embeddings, the plots and warnings on the console.
async Task<int> WithExperiment(ParseResult r, Func<StableAlignmentExperiment, Task> action) => await Terminal.Guarded(r.GetValue(verboseOption), async () =>
{
    if (r.GetValue(engineOption) != "orleans" && (r.GetValue(silosOption) is not null || r.GetValue(clusterOption) is not null))
        throw new ArgumentException("--silos and --cluster need --engine orleans.");
    await using var cluster = r.GetValue(engineOption) != "orleans" ? null
        : r.GetValue(clusterOption) is string address ? await OrleansSandboxHost.ConnectAsync(address)
        : await OrleansSandboxHost.StartLocalAsync(r.GetValue(silosOption) ?? 2, SiloOptions(r), Path.Combine(r.GetValue(outOption)!, "orleans"));
    using var agents = r.GetValue(agentsOption) is string a ? ChatBackends.Create(a) : null;
    using var observers = r.GetValue(observersOption) is string o ? ChatBackends.Create(o) : null;
    using var judge = r.GetValue(judgeOption) is string j ? ChatBackends.Create(j) : null;
    using var warnings = new ConsoleWarnings();
    var backends = new ExperimentBackends
    {
        Agents = agents,
        Observers = observers,
        Judge = judge,
        Questions = r.GetValue(questionsOption) is string file ? StableAlignment.Core.Sandbox.QuestionSource.FromFile(file) : null,
        SandboxEngine = cluster?.Engine,
        LoggerFactory = warnings,
    }.WithMiniLmEmbeddings().WithPlots();
    await action(new StableAlignmentExperiment(Options(r), r.GetValue(outOption)!, backends));
});

Option[] calls = [concurrencyOption, timeoutOption, retriesOption, rateOption, outageOption];
Command Step(string name, string description, Option[] options, Func<StableAlignmentExperiment, CancellationToken, Task> run)
{
    var command = new Command(name, description);
    foreach (var o in options.Prepend(verboseOption).Prepend(quickOption).Prepend(outOption)) command.Options.Add(o);
    command.SetAction((r, ct) => WithExperiment(r, e => run(e, ct)));
    return command;
}

var root = new RootCommand("Stable Alignment: simulate a society, build alignment data, train in three stages, evaluate, report. " +
    "With no command, runs every step. openai: back-ends read the API key from the OPENAI_API_KEY environment variable (never printed). " +
    "Exit codes: " + Terminal.ExitCodes);
foreach (var o in new Option[] { outOption, quickOption, verboseOption, seedOption, seedsOption, gridOption, roundsOption, agentsOption, observersOption, questionsOption,
    releasedOption, initOption, epochsOption, marginOption, weightOption, taskOption, judgeOption, loraOption, budgetOption }.Concat(calls))
    root.Options.Add(o);
root.Subcommands.Add(Step("simulate", "Run the Sandbox society into the SQLite log (resumes an interrupted run).",
    [seedOption, gridOption, roundsOption, agentsOption, observersOption, questionsOption, budgetOption, engineOption, silosOption, clusterOption, .. calls], Terminal.SimulateAsync));
var silo = new Command("silo", "Run one silo of an Orleans cluster (PostgreSQL membership and storage) until Ctrl+C; `simulate --engine orleans --cluster` runs on it.");
foreach (var o in new Option[] { clusterOption, siloPortOption, agentsOption, verboseOption }) silo.Options.Add(o);
silo.SetAction((r, ct) => Terminal.Guarded(r.GetValue(verboseOption), async () =>
{
    if (r.GetValue(clusterOption) is not string address) throw new ArgumentException("silo needs --cluster postgres://user:password@host:port/database.");
    var endpoint = new OrleansSiloEndpoint(r.GetValue(siloPortOption), r.GetValue(siloPortOption) + 1);
    Console.WriteLine($"silo on ports {endpoint.SiloPort}/{endpoint.GatewayPort} of {address.Split('@')[^1]}; Ctrl+C stops it");
    await OrleansSandboxHost.RunSiloAsync(address, SiloOptions(r), endpoint, cancellationToken: ct);
}));
root.Subcommands.Add(silo);
root.Subcommands.Add(Step("build-dataset", "Build imitation, self-critic and realignment samples, split by query.",
    [seedOption, releasedOption], Terminal.BuildDatasetAsync));
root.Subcommands.Add(Step("train", "Train the baselines (SFT, DPO, RRHF) and IL, IL+SC, IL+SC+RA, for every training seed (resumes an interrupted train).",
    [seedOption, seedsOption, initOption, epochsOption, marginOption, weightOption, loraOption], Terminal.TrainAsync));
root.Subcommands.Add(Step("evaluate", "Evaluate every variant of every seed: held-out ranking, judge scores (HH, HH-A), multiple-choice tasks (resumes judging).",
    [seedOption, seedsOption, taskOption, judgeOption, .. calls], Terminal.EvaluateAsync));
root.Subcommands.Add(Step("report", "Write report.md and the plots from the evaluation files.", [seedOption, seedsOption], Terminal.ReportAsync));
var export = new Command("export", "Export a trained variant to Hugging Face safetensors, GGUF or a PEFT adapter.");
foreach (var o in new Option[] { outOption, verboseOption, variantOption, formatOption, toOption, dtypeOption }) export.Options.Add(o);
export.SetAction((r, ct) => Terminal.Guarded(r.GetValue(verboseOption), () => Terminal.ExportAsync(new StableAlignmentExperiment(ExperimentOptions.Default, r.GetValue(outOption)!),
    r.GetValue(variantOption)!, ExportNames.ParseFormat(r.GetValue(formatOption)!), r.GetValue(dtypeOption) is string dtype ? ExportNames.ParseDType(dtype) : null, r.GetValue(toOption)!, ct)));
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
    AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[bold green]Done in {clock.Elapsed.TotalSeconds:F0} s.[/] Report: {e.Folder.Report}");
}));

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
{
    foreach (var error in parsed.Errors) Terminal.Error(error.Message);
    Terminal.Error("run with --help for the options.");
    return Terminal.Usage;
}
using var stop = new StopSignals();
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, stop.Token);
