using StableAlignment.Core.Training;

namespace StableAlignment.Cli;

/// <summary>The model variants the pipeline trains and compares, in the seed table's order.</summary>
internal static class Variants
{
    public const string SftBaseline = "sft-baseline";
    public const string Imitation = "IL";
    public const string ImitationSelfCritic = "IL+SC";
    public const string Full = "IL+SC+RA";

    /// <summary>Every variant, baseline first.</summary>
    public static IReadOnlyList<string> All { get; } = [SftBaseline, Imitation, ImitationSelfCritic, Full];

    /// <summary>The three Stable Alignment variants are the stage boundaries of one IL+SC+RA run.</summary>
    public static string AfterStage(string stageName) => stageName switch
    {
        "imitation" => Imitation,
        "self-critic" => ImitationSelfCritic,
        "realignment" => Full,
        _ => throw new ArgumentOutOfRangeException(nameof(stageName), stageName, "Unknown stage."),
    };

    public static string FolderName(string variant) => variant.Replace('+', '-');

    public static AlignmentRecipe RecipeFor(string variant) =>
        variant == SftBaseline ? AlignmentRecipe.SftOnly : AlignmentRecipe.ImitationSelfCriticRealignment;
}
