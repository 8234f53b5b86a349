using System.Threading.RateLimiting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// Retries transient failures (network errors, timeouts, HTTP 408/429/5xx, no response at all) with capped exponential
/// backoff and jitter, waiting as long as a server's <c>Retry-After</c> asks when it says; rides out an outage of the
/// server up to <see cref="ModelCallOptions.OutageTolerance"/>; limits the rate of attempts; gives each attempt
/// <see cref="ModelCallOptions.CallTimeout"/>; and warns when an attempt stalls. Built on a Polly resilience pipeline.
/// A call that fails for good throws a <see cref="ModelCallException"/> naming the server: a
/// <see cref="ModelServerUnavailableException"/> past the outage tolerance, a <see cref="ModelCallRejectedException"/>
/// when the server refused the call or its reply could not be read. A streaming call is not retried: once updates
/// have been handed out, a retry could not take them back.
/// </summary>
public sealed partial class ResilientChatClient : DelegatingChatClient
{
    private static readonly ResiliencePropertyKey<CallState> CallKey = new("stable_alignment.call");
    private readonly ModelCallOptions _options;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _pipeline;
    private readonly RateLimiter? _rateLimiter;
    private readonly TimeProvider _time;
    private readonly ChatClientMetadata? _metadata;
    private readonly Lock _outage = new();
    private DateTimeOffset? _failingSince;
    private long _lastStallWarning = long.MinValue;
    private int _stalled;

    /// <summary>Creates the client.</summary>
    /// <param name="innerClient">The client to call.</param>
    /// <param name="options">Retries, backoff, outage tolerance, timeout and rate limit; validated here.</param>
    /// <param name="logger">Receives a warning for every retry and stall; null logs nothing.</param>
    /// <param name="timeProvider">The clock of delays, timeouts and outages; null uses the system clock.</param>
    public ResilientChatClient(IChatClient innerClient, ModelCallOptions options, ILogger? logger = null, TimeProvider? timeProvider = null)
        : base(innerClient)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Validate();
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _metadata = innerClient.GetService<ChatClientMetadata>();
        var builder = new ResiliencePipelineBuilder { TimeProvider = _time };
        if (options.MaxRetries > 0 || options.OutageTolerance > TimeSpan.Zero)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                // The predicate decides when to stop: after MaxRetries, and only once the outage is older than the tolerance.
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.MaxRetryDelay,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && ShouldRetry(ex, args.AttemptNumber, args.Context)),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(RetryDelay(args.AttemptNumber, args.Outcome.Exception, args.Context)),
                OnRetry = args =>
                {
                    ModelCallTelemetry.Retries.Add(1);
                    var ex = args.Outcome.Exception;
                    var call = args.Context.Properties.GetValue(CallKey, null!);
                    LogRetry(_logger, args.AttemptNumber + 1, args.RetryDelay.TotalMilliseconds,
                        (_time.GetUtcNow() - OutageSince(call)).TotalSeconds, options.OutageTolerance.TotalSeconds, ModelCallException.Cause(ex));
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
        var call = new CallState(list, options);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(CallKey, call);
        try
        {
            return await _pipeline.ExecuteAsync(static (ctx, state) => state.Client.AttemptAsync(state.Call, ctx.CancellationToken),
                context, (Client: this, Call: call)).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not ModelCallException)
        {
            if (GaveUp(e, call, cancellationToken) is not { } failure) throw;
            throw failure;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>The exception a call that failed for good ends with, or null to let <paramref name="e"/> through (a bug, not the server).</summary>
    private ModelCallException? GaveUp(Exception e, CallState call, CancellationToken cancellationToken)
    {
        Uri? endpoint = _metadata?.ProviderUri;
        string? model = _metadata?.DefaultModelId;
        if (TransientFaults.IsTransient(e, cancellationToken))
        {
            var now = _time.GetUtcNow();
            var since = OutageSince(call);
            LogGaveUp(_logger, since.UtcDateTime, (now - since).TotalSeconds, ModelCallException.Cause(e));
            return new ModelServerUnavailableException(since, now, _options.OutageTolerance, endpoint, model, e);
        }
        if (TransientFaults.HttpStatus(e) is int status) return new ModelCallRejectedException(status, endpoint, model, e);
        if (TransientFaults.IsUnreadableReply(e)) return new ModelCallRejectedException(null, endpoint, model, e);
        return null;
    }

    /// <summary>
    /// The wait before retry <paramref name="attemptNumber"/> + 1: what the server asked for with <c>Retry-After</c>,
    /// else exponential backoff with jitter (half to all of base * 2^n), either capped at
    /// <see cref="ModelCallOptions.MaxRetryDelay"/>. A retry made only because the outage is within the tolerance never
    /// waits past the tolerance's end, so the call gives up when the tolerance is spent, not a backoff later.
    /// </summary>
    private TimeSpan RetryDelay(int attemptNumber, Exception? exception, ResilienceContext context)
    {
        var now = _time.GetUtcNow();
        double cap = _options.MaxRetryDelay.TotalMilliseconds;
        double backoff = Math.Min(cap, _options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attemptNumber, 30)));
        var delay = TransientFaults.RetryAfter(exception, now) is { } asked
            ? TimeSpan.FromMilliseconds(Math.Min(cap, asked.TotalMilliseconds))
            : TimeSpan.FromMilliseconds(backoff * (0.5 + 0.5 * Random.Shared.NextDouble()));
        if (attemptNumber >= _options.MaxRetries)
        {
            var left = OutageSince(context.Properties.GetValue(CallKey, null!)) + _options.OutageTolerance - now;
            if (left < delay) delay = left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
        return delay;
    }

    private bool ShouldRetry(Exception exception, int attemptNumber, ResilienceContext context)
    {
        if (!TransientFaults.IsTransient(exception, context.CancellationToken)) return false;
        var call = context.Properties.GetValue(CallKey, null!);
        return attemptNumber < _options.MaxRetries || _time.GetUtcNow() - OutageSince(call) < _options.OutageTolerance;
    }

    /// <summary>
    /// When the outage this call sees began: the pipeline's first failure after its last answer, when that came before
    /// this call's own first failure (nothing was answered since); otherwise the call's own first failure.
    /// </summary>
    private DateTimeOffset OutageSince(CallState call)
    {
        var first = call.FirstFailure ?? _time.GetUtcNow();
        lock (_outage) return _failingSince is { } since && since < first ? since : first;
    }

    private async ValueTask<ChatResponse> AttemptAsync(CallState call, CancellationToken cancellationToken)
    {
        ModelCallTelemetry.Attempts.Add(1);
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(_options.CallTimeout);
        var stall = new StallWatch(this);
        try
        {
            var response = await base.GetResponseAsync(call.Messages, call.Options, attempt.Token).ConfigureAwait(false);
            Answered();
            return response;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && attempt.IsCancellationRequested)
        {
            Failed(call);
            throw new TimeoutException($"The model call did not answer within {_options.CallTimeout}.");
        }
        catch (Exception e) when (TransientFaults.IsTransient(e, cancellationToken))
        {
            Failed(call);
            throw;
        }
        finally
        {
            stall.Dispose();
        }
    }

    private void Failed(CallState call)
    {
        var now = _time.GetUtcNow();
        call.FirstFailure ??= now;
        lock (_outage) _failingSince ??= now;
    }

    private void Answered()
    {
        DateTimeOffset? since;
        lock (_outage)
        {
            since = _failingSince;
            _failingSince = null;
        }
        if (since is not { } s) return;
        double seconds = (_time.GetUtcNow() - s).TotalSeconds;
        LogRecovered(_logger, seconds);
    }

    /// <summary>Warns once an attempt has waited <see cref="ModelCallOptions.StallWarningAfter"/>, at most once per that interval for the pipeline.</summary>
    private sealed class StallWatch : IDisposable
    {
        private readonly ResilientChatClient _client;
        private readonly ITimer _timer;
        private int _state; // 0 waiting, 1 stalled, 2 done

        public StallWatch(ResilientChatClient client)
        {
            _client = client;
            _timer = client._time.CreateTimer(_ => OnStall(), null, client._options.StallWarningAfter, Timeout.InfiniteTimeSpan);
        }

        private void OnStall()
        {
            if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) return;
            int stalled = Interlocked.Increment(ref _client._stalled);
            long now = _client._time.GetTimestamp();
            long last = Interlocked.Read(ref _client._lastStallWarning);
            var interval = _client._options.StallWarningAfter;
            if ((last == long.MinValue || _client._time.GetElapsedTime(last, now) >= interval)
                && Interlocked.CompareExchange(ref _client._lastStallWarning, now, last) == last)
            {
                LogStall(_client._logger, interval.TotalSeconds, stalled, _client._options.CallTimeout.TotalSeconds);
            }
        }

        public void Dispose()
        {
            _timer.Dispose();
            if (Interlocked.Exchange(ref _state, 2) == 1) Interlocked.Decrement(ref _client._stalled);
        }
    }

    /// <summary>One call: what every attempt sends, and when its first transient failure was.</summary>
    private sealed class CallState(IList<ChatMessage> messages, ChatOptions? options)
    {
        public IList<ChatMessage> Messages { get; } = messages;

        public ChatOptions? Options { get; } = options;

        public DateTimeOffset? FirstFailure { get; set; }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _rateLimiter?.Dispose();
        base.Dispose(disposing);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model call failed transiently ({Cause}); retry {Attempt} in {DelayMs:F0} ms, the server failing for {OutageSeconds:F0} s of the {ToleranceSeconds:F0} s tolerated")]
    private static partial void LogRetry(ILogger logger, int attempt, double delayMs, double outageSeconds, double toleranceSeconds, string cause);

    [LoggerMessage(Level = LogLevel.Error, Message = "Model server unreachable since {Since:HH:mm:ss} UTC ({Seconds:F0} s); giving up on the call ({Cause})")]
    private static partial void LogGaveUp(ILogger logger, DateTime since, double seconds, string cause);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model server answering again after {Seconds:F1} s of failures")]
    private static partial void LogRecovered(ILogger logger, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model calls stalled: {Calls} waiting more than {Seconds:F0} s for an answer (each attempt times out after {TimeoutSeconds:F0} s)")]
    private static partial void LogStall(ILogger logger, double seconds, int calls, double timeoutSeconds);
}
