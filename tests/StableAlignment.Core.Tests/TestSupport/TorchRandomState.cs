namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>
/// Test classes whose results depend on torch's global random generator (an unseeded model, <c>FromHuggingFace</c>,
/// <c>randn</c>, adapter dropout), or that draw from it hard. They run one at a time, after the parallel classes. A
/// seeded model's weights do not depend on it (they come from a generator of their own), so classes that only build
/// seeded models run in parallel.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchRandomState
{
    public const string Name = "torch global random state";
}
