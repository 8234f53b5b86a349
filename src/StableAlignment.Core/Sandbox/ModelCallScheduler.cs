using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// Every model call of a sandbox goes through here: a cap on calls in flight, an optional rate limit, retries with
/// exponential backoff and jitter on transient faults, a per-attempt timeout, and token accounting with a budget.
/// </summary>
internal sealed partial class ModelCallScheduler : IDisposable
{
    /// <summary>The <see cref="ChatOptions.AdditionalProperties"/> key holding the call's stable id (see <see cref="CallId"/>).</summary>
    public const string CallIdProperty = "stable_alignment.call_id";

    private readonly SandboxOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _slots;
    private readonly ResiliencePipeline _pipeline;
    private readonly RateLimiter? _rateLimiter;
    private readonly ConcurrentDictionary<string, long[]> _usage = new(StringComparer.Ordinal);
    private int _inFlight;

    /// <summary>Token counters (in, out) of the interaction the current async flow belongs to, if any.</summary>
    internal static readonly AsyncLocal<long[]?> InteractionUsage = new();
    private long _tokensIn;
    private long _tokensOut;

    public ModelCallScheduler(SandboxOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _slots = new SemaphoreSlim(options.MaxConcurrentCalls, options.MaxConcurrentCalls);
        var builder = new ResiliencePipelineBuilder();
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } ex && IsTransient(ex, args.Context.CancellationToken)),
                OnRetry = args =>
                {
                    SandboxTelemetry.Retries.Add(1);
                    LogRetry(_logger, args.AttemptNumber + 1, args.RetryDelay.TotalMilliseconds, args.Outcome.Exception?.GetType().Name ?? "?",
                        args.Outcome.Exception?.Message ?? "");
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

    /// <summary>Model calls in flight now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    public long TokensIn => Interlocked.Read(ref _tokensIn);

    public long TokensOut => Interlocked.Read(ref _tokensOut);

    /// <summary>Whether the run's token budget is spent.</summary>
    public bool BudgetExhausted => _options.TokenBudget is long budget && TokensIn + TokensOut >= budget;

    /// <summary>Starts the counters of a new run.</summary>
    public void ResetAccounting()
    {
        Interlocked.Exchange(ref _tokensIn, 0);
        Interlocked.Exchange(ref _tokensOut, 0);
        _usage.Clear();
    }

    public IReadOnlyDictionary<string, (long In, long Out)> UsageByParticipant() =>
        _usage.OrderBy(kv => kv.Key, StringComparer.Ordinal)
              .ToDictionary(kv => kv.Key, kv => (Interlocked.Read(ref kv.Value[0]), Interlocked.Read(ref kv.Value[1])), StringComparer.Ordinal);

    /// <summary>A stable id of one call: the same call in a rerun or a resumed run gets the same id.</summary>
    public static string CallId(string step, InteractionContext context, int participant, int attempt) =>
        FormattableString.Invariant($"r{context.Round}/a{context.CentreAgentId}/p{context.Pass}/{step}/{participant}/t{attempt}");

    /// <summary>Sends one chat request under the cap, the rate limit and the retry policy, and accounts its tokens.</summary>
    public async Task<ChatResponse> CallAsync(IChatClient client, IReadOnlyList<ChatMessage> messages, string callId, string participant,
        CancellationToken cancellationToken)
    {
        var chatOptions = new ChatOptions
        {
            Temperature = _options.Temperature,
            MaxOutputTokens = _options.MaxOutputTokens,
            AdditionalProperties = new AdditionalPropertiesDictionary { [CallIdProperty] = callId },
        };
        using var activity = SandboxTelemetry.Source.StartActivity("sandbox.model_call", ActivityKind.Client);
        activity?.SetTag("sandbox.call_id", callId);
        activity?.SetTag("sandbox.participant", participant);

        var response = await _pipeline.ExecuteAsync(async ct => await AttemptAsync(client, messages, chatOptions, ct).ConfigureAwait(false),
            cancellationToken).ConfigureAwait(false);

        long tokensIn = response.Usage?.InputTokenCount ?? EstimateTokens(messages.Sum(m => m.Text.Length));
        long tokensOut = response.Usage?.OutputTokenCount ?? EstimateTokens(response.Text.Length);
        Interlocked.Add(ref _tokensIn, tokensIn);
        Interlocked.Add(ref _tokensOut, tokensOut);
        long[] counters = _usage.GetOrAdd(participant, _ => new long[2]);
        Interlocked.Add(ref counters[0], tokensIn);
        Interlocked.Add(ref counters[1], tokensOut);
        if (InteractionUsage.Value is { } interaction)
        {
            Interlocked.Add(ref interaction[0], tokensIn);
            Interlocked.Add(ref interaction[1], tokensOut);
        }
        SandboxTelemetry.TokensIn.Add(tokensIn);
        SandboxTelemetry.TokensOut.Add(tokensOut);
        activity?.SetTag("gen_ai.usage.input_tokens", tokensIn);
        activity?.SetTag("gen_ai.usage.output_tokens", tokensOut);
        return response;
    }

    private async Task<ChatResponse> AttemptAsync(IChatClient client, IReadOnlyList<ChatMessage> messages, ChatOptions chatOptions,
        CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _inFlight);
        SandboxTelemetry.InFlight.Add(1);
        SandboxTelemetry.Calls.Add(1);
        try
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(_options.CallTimeout);
            try
            {
                return await client.GetResponseAsync(messages, chatOptions, attempt.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && attempt.IsCancellationRequested)
            {
                throw new TimeoutException($"The model call did not answer within {_options.CallTimeout}.");
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            SandboxTelemetry.InFlight.Add(-1);
            _slots.Release();
        }
    }

    // Providers without usage data still count against the budget, roughly (4 characters a token).
    private static long EstimateTokens(int characters) => (characters + 3) / 4;

    /// <summary>
    /// Transient: HTTP 408/429/5xx or no status (network), timeouts, and cancellations that the caller did not ask
    /// for (e.g. HttpClient's own timeout). Provider SDK exceptions are recognised by a <c>Status</c> or
    /// <c>StatusCode</c> property, so the core library needs no provider package.
    /// </summary>
    internal static bool IsTransient(Exception exception, CancellationToken callerToken)
    {
        switch (exception)
        {
            case TimeoutException:
                return true;
            case OperationCanceledException:
                return !callerToken.IsCancellationRequested;
            case HttpRequestException http:
                return http.StatusCode is null || IsTransientStatus((int)http.StatusCode.Value);
        }
        var type = exception.GetType();
        object? status = type.GetProperty("Status")?.GetValue(exception) ?? type.GetProperty("StatusCode")?.GetValue(exception);
        return status switch
        {
            int code => IsTransientStatus(code),
            HttpStatusCode code => IsTransientStatus((int)code),
            _ => exception.InnerException is { } inner && IsTransient(inner, callerToken),
        };
    }

    private static bool IsTransientStatus(int code) => code is 408 or 429 || code >= 500;

    public void Dispose()
    {
        _slots.Dispose();
        _rateLimiter?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model call failed transiently; retry {Attempt} in {DelayMs:F0} ms ({ExceptionType}: {ExceptionMessage})")]
    private static partial void LogRetry(ILogger logger, int attempt, double delayMs, string exceptionType, string exceptionMessage);
}
