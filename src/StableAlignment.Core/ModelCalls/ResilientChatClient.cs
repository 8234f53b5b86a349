using System.Threading.RateLimiting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// Retries transient failures (network errors, timeouts, HTTP 408/429/5xx) with capped exponential backoff and jitter,
/// waiting as long as a server's <c>Retry-After</c> asks when it says; limits the rate of attempts; and gives each
/// attempt <see cref="ModelCallOptions.CallTimeout"/>. Built on a Polly resilience pipeline. A streaming call is not
/// retried: once updates have been handed out, a retry could not take them back.
/// </summary>
public sealed partial class ResilientChatClient : DelegatingChatClient
{
    private readonly ModelCallOptions _options;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _pipeline;
    private readonly RateLimiter? _rateLimiter;
    private readonly TimeProvider _time;

    /// <summary>Creates the client.</summary>
    /// <param name="innerClient">The client to call.</param>
    /// <param name="options">Retries, backoff, timeout and rate limit; validated here.</param>
    /// <param name="logger">Receives a warning for every retry; null logs nothing.</param>
    /// <param name="timeProvider">The clock of delays and timeouts; null uses the system clock.</param>
    public ResilientChatClient(IChatClient innerClient, ModelCallOptions options, ILogger? logger = null, TimeProvider? timeProvider = null)
        : base(innerClient)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Validate();
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        var builder = new ResiliencePipelineBuilder { TimeProvider = _time };
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.MaxRetryDelay,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } ex && TransientFaults.IsTransient(ex, args.Context.CancellationToken)),
                // A server that says how long to wait is believed, up to the cap; otherwise the backoff decides.
                DelayGenerator = args => ValueTask.FromResult(
                    TransientFaults.RetryAfter(args.Outcome.Exception, _time.GetUtcNow()) is { } wait
                        ? (TimeSpan?)(wait < options.MaxRetryDelay ? wait : options.MaxRetryDelay) : null),
                OnRetry = args =>
                {
                    ModelCallTelemetry.Retries.Add(1);
                    var ex = args.Outcome.Exception;
                    LogRetry(_logger, args.AttemptNumber + 1, options.MaxRetries, args.RetryDelay.TotalMilliseconds,
                        ex?.GetType().Name ?? "?", Excerpt(ex?.Message));
                    return default;
                },
            });
        }
        if (options.MaxCallsPerSecond is double rate)
        {
            _rateLimiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = Math.Max(1, (int)Math.Ceiling(rate)),
                TokensPerPeriod = 1,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1.0 / rate),
                QueueLimit = int.MaxValue,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                AutoReplenishment = true,
            });
            builder.AddRateLimiter(_rateLimiter);
        }
        _pipeline = builder.Build();
    }

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        // Every attempt sends the same messages, so enumerate them once.
        var list = messages as IList<ChatMessage> ?? [.. messages];
        return await _pipeline.ExecuteAsync(async ct => await AttemptAsync(list, options, ct).ConfigureAwait(false), cancellationToken)
            .ConfigureAwait(false);
    }

    private async Task<ChatResponse> AttemptAsync(IList<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        ModelCallTelemetry.Attempts.Add(1);
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(_options.CallTimeout);
        try
        {
            return await base.GetResponseAsync(messages, options, attempt.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && attempt.IsCancellationRequested)
        {
            throw new TimeoutException($"The model call did not answer within {_options.CallTimeout}.");
        }
    }

    private static string Excerpt(string? text) =>
        text is null ? "" : text.Length <= 200 ? text : string.Concat(text.AsSpan(0, 197), "...");

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _rateLimiter?.Dispose();
        base.Dispose(disposing);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model call failed transiently; retry {Attempt} of {MaxRetries} in {DelayMs:F0} ms ({ExceptionType}: {ExceptionMessage})")]
    private static partial void LogRetry(ILogger logger, int attempt, int maxRetries, double delayMs, string exceptionType, string exceptionMessage);
}
