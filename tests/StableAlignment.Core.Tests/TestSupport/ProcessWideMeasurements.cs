namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>
/// Test classes that measure the whole process (its resident set), which every other test running beside them would
/// change. They run one at a time, after the parallel classes.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMeasurements
{
    public const string Name = "process-wide measurements";
}
