namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>Reports synchronously on the reporting thread (<see cref="Progress{T}"/> posts to the thread pool, so order and timing would vary).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
