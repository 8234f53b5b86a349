namespace StableAlignment.Core.Sandbox;

/// <summary>
/// A simulated society on an N x N grid that produces alignment data through Back-Scatter interactions (design card: <c>ISandbox</c>).
/// </summary>
public interface ISandbox : IAsyncDisposable
{
    /// <summary>The validated options of this world.</summary>
    SandboxOptions Options { get; }

    /// <summary>The active social agents, in id order.</summary>
    IReadOnlyList<IAgent> Agents { get; }

    /// <summary>The observers.</summary>
    IReadOnlyList<IObserverAgent> Observers { get; }

    /// <summary>The ids of the agents within the neighbourhood radius of <paramref name="agentId"/> (itself excluded).</summary>
    IReadOnlyList<int> Neighbours(int agentId);

    /// <summary>
    /// Runs rounds 0 .. <paramref name="rounds"/> - 1, logging every interaction durably to the SQLite file
    /// <paramref name="logPath"/>. If the log already holds interactions of this world, the run resumes after the
    /// last one; the same seed gives the same remaining schedule.
    /// </summary>
    /// <exception cref="OperationCanceledException">When cancelled; everything logged so far stays, and a later call resumes.</exception>
    Task<SandboxRunResult> RunAsync(int rounds, string logPath, IProgress<SandboxProgress>? progress = null,
        CancellationToken cancellationToken = default);
}

/// <summary>Why a run ended.</summary>
public enum SandboxStopReason
{
    /// <summary>Every requested round is in the log.</summary>
    Completed,

    /// <summary>The token budget was reached; the log holds a clean prefix of the schedule and can be resumed.</summary>
    BudgetExhausted,
}

/// <summary>A progress report of a running sandbox.</summary>
/// <param name="Round">The lowest round not yet fully logged.</param>
/// <param name="InteractionsDone">Interactions in the log, this run and earlier ones.</param>
/// <param name="InteractionsTotal">Interactions the requested rounds hold.</param>
/// <param name="CallsInFlight">Model calls in flight now.</param>
/// <param name="RatingFailures">Ratings recorded as failures in this run.</param>
/// <param name="TokensIn">Prompt tokens used in this run.</param>
/// <param name="TokensOut">Completion tokens used in this run.</param>
public sealed record SandboxProgress(int Round, long InteractionsDone, long InteractionsTotal, int CallsInFlight, long RatingFailures,
    long TokensIn, long TokensOut);

/// <summary>The outcome of <see cref="ISandbox.RunAsync"/>.</summary>
public sealed record SandboxRunResult
{
    /// <summary>Why the run ended.</summary>
    public required SandboxStopReason StopReason { get; init; }

    /// <summary>Interactions logged by this call.</summary>
    public required long InteractionsThisRun { get; init; }

    /// <summary>Interactions in the log after this call.</summary>
    public required long InteractionsInLog { get; init; }

    /// <summary>Ratings recorded as failures by this call.</summary>
    public required long RatingFailures { get; init; }

    /// <summary>Prompt tokens used by this call.</summary>
    public required long TokensIn { get; init; }

    /// <summary>Completion tokens used by this call.</summary>
    public required long TokensOut { get; init; }

    /// <summary>Tokens (in, out) per social agent id and per observer (keys "agent:{id}", "observer:{id}") in this call.</summary>
    public required IReadOnlyDictionary<string, (long In, long Out)> TokensByParticipant { get; init; }

    /// <summary>Wall time of this call.</summary>
    public required TimeSpan Elapsed { get; init; }
}
