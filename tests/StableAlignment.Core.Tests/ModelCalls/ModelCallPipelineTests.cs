using System.Net;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using StableAlignment.Core.ModelCalls;

namespace StableAlignment.Core.Tests.ModelCalls;

public sealed class ModelCallPipelineTests
{
    /// <summary>Answers "ok" after running a script per call: throw, wait for a gate, or answer.</summary>
    private sealed class ScriptedInner(Func<int, CancellationToken, Task> before) : IChatClient
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            int call = Interlocked.Increment(ref _calls);
            await before(call, cancellationToken);
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok")) { Usage = new UsageDetails { InputTokenCount = 10, OutputTokenCount = 3 } };
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    private sealed class RecordingLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Messages) Messages.Add(formatter(state, exception));
        }
    }

    /// <summary>A provider exception as System.ClientModel shapes it: a status and a raw response with headers.</summary>
    private sealed class ProviderException(int status, string? retryAfter) : Exception("provider error")
    {
        public int Status { get; } = status;

        public RawResponse GetRawResponse() => new(retryAfter);

        public sealed class RawResponse(string? retryAfter)
        {
            public Headers Headers { get; } = new(retryAfter);
        }

        public sealed class Headers(string? retryAfter)
        {
            public bool TryGetValue(string name, out string? value)
            {
                value = name == "Retry-After" ? retryAfter : null;
                return value is not null;
            }
        }
    }

    [Fact]
    public async Task At_most_the_cap_reaches_the_inner_client_and_the_next_call_enters_when_one_leaves()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var third = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fourth = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new[] { new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var inner = new ScriptedInner(async (call, ct) =>
        {
            if (call == 3) third.SetResult();
            if (call == 4) fourth.SetResult();
            await (call == 1 ? release[0].Task : gate.Task).WaitAsync(ct);
        });
        using var limited = new ConcurrencyLimitingChatClient(inner, 3);
        var calls = Enumerable.Range(0, 6).Select(_ => limited.GetResponseAsync("q")).ToList();
        await third.Task;
        // Nothing has left, so the semaphore holds the other three: exactly three are inside.
        Assert.Equal(3, inner.Calls);
        Assert.Equal(3, limited.InFlight);
        release[0].SetResult();
        await fourth.Task;
        Assert.Equal(4, inner.Calls);
        gate.SetResult();
        await Task.WhenAll(calls);
        Assert.Equal(6, inner.Calls);
        Assert.Equal(0, limited.InFlight);
    }

    [Fact]
    public async Task Transient_failures_are_retried_up_to_the_limit_and_others_not_at_all()
    {
        // No outage tolerance: MaxRetries alone decides.
        var options = new ModelCallOptions
        {
            MaxRetries = 3, RetryBaseDelay = TimeSpan.FromMilliseconds(1), MaxRetryDelay = TimeSpan.FromMilliseconds(2), OutageTolerance = TimeSpan.Zero,
        };
        var flaky = new ScriptedInner((call, _) => call <= 2 ? throw new HttpRequestException("busy", null, HttpStatusCode.ServiceUnavailable) : Task.CompletedTask);
        using (var client = new ResilientChatClient(flaky, options)) Assert.Equal("ok", (await client.GetResponseAsync("q")).Text);
        Assert.Equal(3, flaky.Calls);

        var down = new ScriptedInner((_, _) => throw new HttpRequestException("refused"));
        using (var client = new ResilientChatClient(down, options))
            Assert.IsType<HttpRequestException>((await Assert.ThrowsAsync<ModelServerUnavailableException>(() => client.GetResponseAsync("q"))).InnerException);
        Assert.Equal(4, down.Calls);

        var unauthorized = new ScriptedInner((_, _) => throw new HttpRequestException("no key", null, HttpStatusCode.Unauthorized));
        using (var client = new ResilientChatClient(unauthorized, options))
        {
            var rejected = await Assert.ThrowsAsync<ModelCallRejectedException>(() => client.GetResponseAsync("q"));
            Assert.True(rejected.IsAuthenticationFailure);
            Assert.Equal(401, rejected.Status);
        }
        Assert.Equal(1, unauthorized.Calls);
    }

    [Fact]
    public async Task A_servers_retry_after_sets_the_delay_up_to_the_cap()
    {
        var logger = new RecordingLogger();
        var options = new ModelCallOptions { MaxRetries = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(1), MaxRetryDelay = TimeSpan.FromMilliseconds(40) };
        var limited = new ScriptedInner((call, _) => call switch
        {
            1 => throw new ProviderException(429, "0.025"),
            2 => throw new ProviderException(429, "3600"),
            _ => Task.CompletedTask,
        });
        using var client = new ResilientChatClient(limited, options, logger);
        await client.GetResponseAsync("q");
        Assert.Collection(logger.Messages.Where(m => m.Contains("retry", StringComparison.Ordinal)),
            m => Assert.Contains("retry 1 in 25 ms", m, StringComparison.Ordinal),
            m => Assert.Contains("retry 2 in 40 ms", m, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_attempt_that_hangs_times_out_as_a_timeout()
    {
        var hanging = new ScriptedInner((_, ct) => Task.Delay(Timeout.Infinite, ct));
        using var client = new ResilientChatClient(hanging, new ModelCallOptions
        {
            MaxRetries = 1, RetryBaseDelay = TimeSpan.Zero, CallTimeout = TimeSpan.FromMilliseconds(50), OutageTolerance = TimeSpan.Zero,
        });
        var ex = Assert.IsType<TimeoutException>((await Assert.ThrowsAsync<ModelServerUnavailableException>(() => client.GetResponseAsync("q"))).InnerException);
        Assert.Contains("00:00:00.05", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, hanging.Calls);
    }

    [Fact]
    public async Task The_caller_cancelling_is_not_retried()
    {
        using var cts = new CancellationTokenSource();
        var inner = new ScriptedInner(async (_, ct) =>
        {
            await cts.CancelAsync();
            ct.ThrowIfCancellationRequested();
        });
        using var client = new ResilientChatClient(inner, new ModelCallOptions { MaxRetries = 3, RetryBaseDelay = TimeSpan.Zero });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync("q", cancellationToken: cts.Token));
        Assert.Equal(1, inner.Calls);
    }

    [Fact]
    public async Task The_policy_charges_usage_or_an_estimate_to_a_budget_the_pipeline_exposes()
    {
        var budget = new TokenBudget(25);
        using var client = new ScriptedInner((_, _) => Task.CompletedTask).AsBuilder().UseModelCallPolicy(budget: budget).Build();
        Assert.Same(budget, client.GetService<TokenBudget>());
        Assert.NotNull(client.GetService<ConcurrencyLimitingChatClient>());
        await client.GetResponseAsync("q");
        Assert.Equal((10, 3), (budget.TokensIn, budget.TokensOut));
        Assert.False(budget.IsExhausted);
        await client.GetResponseAsync("q");
        Assert.True(budget.IsExhausted);

        // Without usage data, four characters count as a token: 8 characters in, "silent" (6) out.
        var estimated = new TokenBudget();
        using var silent = new TokenBudgetChatClient(new StaticChatClient("silent"), estimated);
        await silent.GetResponseAsync("12345678");
        Assert.Equal((2, 2), (estimated.TokensIn, estimated.TokensOut));
    }

    private sealed class StaticChatClient(string reply) : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, reply)));

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    [Fact]
    public void Bad_options_name_the_option()
    {
        Assert.Contains("MaxConcurrentCalls", Assert.Throws<ArgumentException>(() => new ModelCallOptions { MaxConcurrentCalls = 0 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("MaxRetryDelay", Assert.Throws<ArgumentException>(() => new ModelCallOptions { MaxRetryDelay = TimeSpan.FromMilliseconds(1) }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("TokenBudget", Assert.Throws<ArgumentException>(() => new ModelCallOptions { TokenBudget = 0 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("OutageTolerance", Assert.Throws<ArgumentException>(() => new ModelCallOptions { OutageTolerance = TimeSpan.FromSeconds(-1) }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("StallWarningAfter", Assert.Throws<ArgumentException>(() => new ModelCallOptions { StallWarningAfter = TimeSpan.Zero }.Validate()).Message, StringComparison.Ordinal);
    }
}
