namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// How model calls are made: the cap on calls in flight, an optional rate limit, retries with capped exponential
/// backoff and jitter on transient faults, riding out server outages up to <see cref="OutageTolerance"/>, and a
/// per-attempt timeout. None of these change what a model answers, so
/// they may differ between a run and its resumption. Compose them with
/// <see cref="ModelCallChatClientBuilderExtensions.UseModelCallPolicy"/>.
/// </summary>
public sealed record ModelCallOptions
{
    /// <summary>Cap on calls in flight at once through one pipeline (a call holds its slot across its retries). Default 16.</summary>
    public int MaxConcurrentCalls { get; init; } = 16;

    /// <summary>Optional rate limit on call attempts per second (token bucket); <see langword="null"/> = unlimited.</summary>
    public double? MaxCallsPerSecond { get; init; }

    /// <summary>
    /// Retries of one call on transient faults (network errors, timeouts, HTTP 408/429/5xx) at least; a call keeps
    /// retrying past them while the server's outage is shorter than <see cref="OutageTolerance"/>. Default 4.
    /// </summary>
    public int MaxRetries { get; init; } = 4;

    /// <summary>
    /// How long an outage of the model server is ridden out: while every attempt fails transiently for less than this,
    /// calls keep retrying (with the capped backoff) instead of failing the run. The outage is counted from the first
    /// failure after the pipeline's last answer, or from the call's own first failure when other calls were answered
    /// since. Past it the call fails with <see cref="ModelServerUnavailableException"/>. Default 60 s; zero leaves only
    /// <see cref="MaxRetries"/>.
    /// </summary>
    public TimeSpan OutageTolerance { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>An attempt that has waited this long for an answer logs a stall warning (at most one per this interval). Default 30 s.</summary>
    public TimeSpan StallWarningAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>First retry delay; later ones grow exponentially with jitter. Default 500 ms.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait before one retry, for the backoff and for a server's <c>Retry-After</c>. Default 30 s.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time limit of a single call attempt; a timeout is retried as transient. Default 2 minutes.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Optional budget of tokens (in + out); once spent, callers that check it start no new work.</summary>
    public long? TokenBudget { get; init; }

    /// <summary>Checks every option and throws an <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ModelCallOptions Validate()
    {
        static void Check(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"ModelCallOptions.{name}: {message}", name);
        }

        Check(MaxConcurrentCalls >= 1, nameof(MaxConcurrentCalls), $"must be at least 1, got {MaxConcurrentCalls}.");
        Check(MaxCallsPerSecond is null || (MaxCallsPerSecond > 0 && double.IsFinite(MaxCallsPerSecond.Value)), nameof(MaxCallsPerSecond),
            $"must be positive and finite, got {MaxCallsPerSecond}.");
        Check(MaxRetries >= 0, nameof(MaxRetries), $"must not be negative, got {MaxRetries}.");
        Check(RetryBaseDelay >= TimeSpan.Zero, nameof(RetryBaseDelay), $"must not be negative, got {RetryBaseDelay}.");
        Check(MaxRetryDelay >= RetryBaseDelay, nameof(MaxRetryDelay), $"must be at least RetryBaseDelay ({RetryBaseDelay}), got {MaxRetryDelay}.");
        Check(CallTimeout > TimeSpan.Zero, nameof(CallTimeout), $"must be positive, got {CallTimeout}.");
        Check(OutageTolerance >= TimeSpan.Zero, nameof(OutageTolerance), $"must not be negative, got {OutageTolerance}.");
        Check(StallWarningAfter > TimeSpan.Zero, nameof(StallWarningAfter), $"must be positive, got {StallWarningAfter}.");
        Check(TokenBudget is null || TokenBudget > 0, nameof(TokenBudget), $"must be positive, got {TokenBudget}.");
        return this;
    }
}
