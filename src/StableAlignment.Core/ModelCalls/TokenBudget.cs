namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// A shared, thread-safe count of the tokens spent through one or more pipelines, with an optional limit. The budget
/// never refuses a call: a stop is cooperative, so work already started can finish and its results be kept. Callers
/// check <see cref="IsExhausted"/> before starting new work (the sandbox does, before each interaction). A pipeline
/// exposes its budget through <c>GetService&lt;TokenBudget&gt;()</c>.
/// </summary>
public sealed class TokenBudget
{
    private long _tokensIn;
    private long _tokensOut;

    /// <summary>Creates a budget.</summary>
    /// <param name="limit">Tokens (in + out) after which the budget is exhausted; <see langword="null"/> counts without a limit.</param>
    /// <exception cref="ArgumentOutOfRangeException">The limit is not positive.</exception>
    public TokenBudget(long? limit = null)
    {
        if (limit is <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "A token budget must be positive.");
        Limit = limit;
    }

    /// <summary>The limit, or <see langword="null"/> for none.</summary>
    public long? Limit { get; }

    /// <summary>Prompt tokens spent so far.</summary>
    public long TokensIn => Interlocked.Read(ref _tokensIn);

    /// <summary>Completion tokens spent so far.</summary>
    public long TokensOut => Interlocked.Read(ref _tokensOut);

    /// <summary>Whether the spent tokens have reached the limit.</summary>
    public bool IsExhausted => Limit is long limit && TokensIn + TokensOut >= limit;

    /// <summary>Adds the tokens of one call.</summary>
    /// <param name="tokensIn">Prompt tokens.</param>
    /// <param name="tokensOut">Completion tokens.</param>
    public void Charge(long tokensIn, long tokensOut)
    {
        Interlocked.Add(ref _tokensIn, tokensIn);
        Interlocked.Add(ref _tokensOut, tokensOut);
    }
}
