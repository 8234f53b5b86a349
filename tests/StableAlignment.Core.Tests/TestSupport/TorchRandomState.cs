namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>
/// Test classes that seed or draw from torch's global random generator (a seeded <c>CausalLanguageModel</c> calls
/// <c>manual_seed</c>; an unseeded one, <c>FromHuggingFace</c>, <c>randn</c> draw from it). They run one at a time,
/// after the parallel classes, so they cannot change the weights another class builds from the same seed mid-way
/// (the trainer's resume test compares two models built from one seed).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchRandomState
{
    public const string Name = "torch global random state";
}
