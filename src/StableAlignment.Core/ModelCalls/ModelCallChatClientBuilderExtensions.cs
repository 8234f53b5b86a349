using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// <see cref="ChatClientBuilder"/> extensions for the model-call policy, one <c>Use…</c> per behaviour, as
/// Microsoft.Extensions.AI composes its own clients.
/// </summary>
public static class ModelCallChatClientBuilderExtensions
{
    /// <summary>Adds a <see cref="ConcurrencyLimitingChatClient"/>.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="maxConcurrentCalls">The cap on calls in flight.</param>
    /// <returns>The builder.</returns>
    public static ChatClientBuilder UseConcurrencyLimit(this ChatClientBuilder builder, int maxConcurrentCalls)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrentCalls, 1);
        return builder.Use(inner => new ConcurrencyLimitingChatClient(inner, maxConcurrentCalls));
    }

    /// <summary>Adds a <see cref="ResilientChatClient"/> (retries, backoff, per-attempt timeout, rate limit).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The policy; defaults when null.</param>
    /// <param name="loggerFactory">Receives retry warnings; null logs nothing.</param>
    /// <returns>The builder.</returns>
    public static ChatClientBuilder UseResilience(this ChatClientBuilder builder, ModelCallOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var validated = (options ?? new ModelCallOptions()).Validate();
        return builder.Use(inner => new ResilientChatClient(inner, validated, loggerFactory?.CreateLogger<ResilientChatClient>()));
    }

    /// <summary>Adds a <see cref="TokenBudgetChatClient"/> charging <paramref name="budget"/>.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="budget">The budget; share one instance between pipelines that spend from the same budget.</param>
    /// <returns>The builder.</returns>
    public static ChatClientBuilder UseTokenBudget(this ChatClientBuilder builder, TokenBudget budget)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(budget);
        return builder.Use(inner => new TokenBudgetChatClient(inner, budget));
    }

    /// <summary>
    /// The whole policy, outermost first: token budget, OpenTelemetry (Microsoft.Extensions.AI's client, under
    /// <see cref="ModelCallTelemetry.Name"/>), logging (Microsoft.Extensions.AI's, when a logger factory is given),
    /// concurrency limit, then resilience. The slot is taken outside the retries,
    /// so backoff waits keep the number of calls a server sees at the cap; the timeout covers one attempt, never the
    /// wait for a slot.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The policy; defaults when null.</param>
    /// <param name="budget">The budget to charge; null creates one from <see cref="ModelCallOptions.TokenBudget"/>.</param>
    /// <param name="loggerFactory">Receives retry warnings and, at debug level, each call; null logs nothing.</param>
    /// <returns>The builder.</returns>
    public static ChatClientBuilder UseModelCallPolicy(this ChatClientBuilder builder, ModelCallOptions? options = null, TokenBudget? budget = null,
        ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var validated = (options ?? new ModelCallOptions()).Validate();
        builder
            .UseTokenBudget(budget ?? new TokenBudget(validated.TokenBudget))
            .UseOpenTelemetry(loggerFactory, ModelCallTelemetry.Name);
        if (loggerFactory is not null) builder.UseLogging(loggerFactory);
        return builder
            .UseConcurrencyLimit(validated.MaxConcurrentCalls)
            .UseResilience(validated, loggerFactory);
    }
}
