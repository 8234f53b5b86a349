using StableAlignment.Core.Evaluation;

namespace StableAlignment.Cli;

/// <summary>Multiple-choice task files given on the command line as <c>KIND=PATH</c>.</summary>
internal static class TaskSpecs
{
    public const string Help =
        "KIND=PATH, KIND one of truthfulqa-mc1, truthfulqa-mc2, ethics-justice, ethics-deontology, ethics-commonsense, " +
        "ethics-virtue, ethics-utilitarianism, moral-stories, hh-pairs, jsonl";

    public static MultipleChoiceTask Load(string spec, int maxItems)
    {
        int eq = spec.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0) throw new UserFacingException($"Task '{spec}' is not of the form {Help}.");
        string kind = spec[..eq], path = spec[(eq + 1)..];
        if (!File.Exists(path)) throw new UserFacingException($"Task file '{path}' does not exist.");
        MultipleChoiceTask task = kind switch
        {
            "truthfulqa-mc1" => TruthfulQaTasks.LoadMc1(path),
            "truthfulqa-mc2" => TruthfulQaTasks.LoadMc2(path),
            "ethics-justice" => EthicsTasks.Load(path, EthicsSubset.Justice),
            "ethics-deontology" => EthicsTasks.Load(path, EthicsSubset.Deontology),
            "ethics-commonsense" => EthicsTasks.Load(path, EthicsSubset.Commonsense),
            "ethics-virtue" => EthicsTasks.Load(path, EthicsSubset.Virtue),
            "ethics-utilitarianism" => EthicsTasks.Load(path, EthicsSubset.Utilitarianism),
            "moral-stories" => MoralStoriesTasks.Load(path),
            "hh-pairs" => HhRlhfTasks.LoadPairs(path),
            "jsonl" => JsonlMultipleChoiceTasks.Load(path),
            _ => throw new UserFacingException($"Unknown task kind '{kind}'; use {Help}."),
        };
        // A fixed leading slice keeps the run short and the same items across variants, so comparisons stay paired.
        return task.Items.Count <= maxItems ? task : task with { Items = task.Items.Take(maxItems).ToArray() };
    }
}
