using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using StableAlignment.Core.ModelCalls;

namespace StableAlignment.Core.Tests.ModelCalls;

/// <summary>
/// Riding out a server outage up to <see cref="ModelCallOptions.OutageTolerance"/>, on a fake clock that the fake
/// server itself advances by a fixed step at every attempt: the outage's length is counted in attempts, so nothing
/// here depends on how fast the machine is.
/// </summary>
public sealed class OutageToleranceTests
{
    private static readonly Uri Endpoint = new("http://127.0.0.1:9/v1");

    /// <summary>Refuses the connection for the attempts <paramref name="down"/> names; every attempt moves the clock on by <paramref name="step"/>.</summary>
    private sealed class FlakyServer(FakeTimeProvider time, TimeSpan step, Func<int, Exception?> down) : IChatClient
    {
        private readonly ChatClientMetadata _metadata = new("fake", Endpoint, "m1");
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            int call = Interlocked.Increment(ref _calls);
            time.Advance(step);
            return down(call) is { } fault ? Task.FromException<ChatResponse>(fault) : Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok")));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => serviceType == typeof(ChatClientMetadata) ? _metadata : null;

        public void Dispose()
        {
        }
    }

    private static HttpRequestException Refused() => new("Connection refused (127.0.0.1:9)", new System.Net.Sockets.SocketException(111));

    private static ModelCallOptions Options(int retries, double toleranceSeconds) => new()
    {
        MaxRetries = retries, RetryBaseDelay = TimeSpan.Zero, MaxRetryDelay = TimeSpan.Zero, OutageTolerance = TimeSpan.FromSeconds(toleranceSeconds),
    };

    [Fact]
    public async Task An_outage_shorter_than_the_tolerance_is_ridden_out_past_the_retry_count()
    {
        var time = new FakeTimeProvider();
        // Attempts at 20, 40, 60 s fail; the fourth, 60 s after the first failure, is not made by MaxRetries = 1 alone.
        var server = new FlakyServer(time, TimeSpan.FromSeconds(20), call => call <= 3 ? Refused() : null);
        using var client = new ResilientChatClient(server, Options(retries: 1, toleranceSeconds: 61), timeProvider: time);
        Assert.Equal("ok", (await client.GetResponseAsync("q")).Text);
        Assert.Equal(4, server.Calls);
    }

    [Fact]
    public async Task Past_the_tolerance_the_call_fails_with_the_time_the_outage_began_and_the_server_named()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
        var server = new FlakyServer(time, TimeSpan.FromSeconds(20), _ => Refused());
        using var client = new ResilientChatClient(server, Options(retries: 1, toleranceSeconds: 60), timeProvider: time);
        var ex = await Assert.ThrowsAsync<ModelServerUnavailableException>(() => client.GetResponseAsync("q"));
        // First failure at 12:00:20; at 80 s the outage is 60 s old, which is no longer within the tolerance.
        Assert.Equal(4, server.Calls);
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 12, 0, 20, TimeSpan.Zero), ex.UnavailableSince);
        Assert.Equal(Endpoint, ex.Endpoint);
        foreach (string part in new[] { "http://127.0.0.1:9/v1", "'m1'", "unreachable since 12:00:20 UTC", "Connection refused" })
            Assert.Contains(part, ex.Message, StringComparison.Ordinal);

        // The next call joins the outage the pipeline is already in: it gives up after its MaxRetries, not 60 s later.
        int before = server.Calls;
        var again = await Assert.ThrowsAsync<ModelServerUnavailableException>(() => client.GetResponseAsync("q"));
        Assert.Equal(2, server.Calls - before);
        Assert.Equal(ex.UnavailableSince, again.UnavailableSince);
    }

    [Fact]
    public async Task An_answer_ends_the_outage_so_a_later_failure_starts_a_new_one()
    {
        var time = new FakeTimeProvider();
        // Call 1 fails on attempts 1-2 and is answered on 3; call 2 then fails throughout.
        var server = new FlakyServer(time, TimeSpan.FromSeconds(20), call => call is 3 ? null : Refused());
        using var client = new ResilientChatClient(server, Options(retries: 0, toleranceSeconds: 30), timeProvider: time);
        await client.GetResponseAsync("q");
        var start = time.GetUtcNow();
        var ex = await Assert.ThrowsAsync<ModelServerUnavailableException>(() => client.GetResponseAsync("q"));
        Assert.Equal(start + TimeSpan.FromSeconds(20), ex.UnavailableSince);
        Assert.Equal(3 + 3, server.Calls); // attempts at +20 (0 s old), +40 (20 s), +60 (40 s > 30 s: give up)
    }

    [Fact]
    public async Task A_refused_call_and_an_unreadable_reply_fail_at_once_with_what_to_fix()
    {
        var time = new FakeTimeProvider();
        var unauthorized = new FlakyServer(time, TimeSpan.Zero, _ => new HttpRequestException("Unauthorized", null, HttpStatusCode.Unauthorized));
        using (var client = new ResilientChatClient(unauthorized, Options(retries: 4, toleranceSeconds: 60), timeProvider: time))
        {
            var ex = await Assert.ThrowsAsync<ModelCallRejectedException>(() => client.GetResponseAsync("q"));
            Assert.True(ex.IsAuthenticationFailure);
            Assert.Contains("HTTP 401", ex.Message, StringComparison.Ordinal);
            Assert.Contains("API key", ex.Message, StringComparison.Ordinal);
        }
        Assert.Equal(1, unauthorized.Calls);

        var garbage = new FlakyServer(time, TimeSpan.Zero, _ => new JsonException("'<' is an invalid start of a value." + new string('x', 5000)));
        using (var client = new ResilientChatClient(garbage, Options(retries: 4, toleranceSeconds: 60), timeProvider: time))
        {
            var ex = await Assert.ThrowsAsync<ModelCallRejectedException>(() => client.GetResponseAsync("q"));
            Assert.Null(ex.Status);
            Assert.Contains("not a chat reply", ex.Message, StringComparison.Ordinal);
            Assert.True(ex.Message.Length < 400, $"the message quotes at most 200 characters of the reply: {ex.Message.Length}");
        }
        Assert.Equal(1, garbage.Calls);
    }

    [Fact]
    public void A_failed_call_of_an_inner_pipeline_is_not_retried_again()
    {
        Assert.False(TransientFaults.IsTransient(new ModelServerUnavailableException("down", Refused()), default));
        Assert.False(TransientFaults.IsTransient(new ModelCallRejectedException("refused", Refused()), default));
    }

    private sealed class Gate : IChatClient
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Entered.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok"));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    private sealed class Warnings : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning) lock (Lines) Lines.Add(formatter(state, exception));
        }
    }

    [Fact]
    public async Task A_call_that_waits_long_for_an_answer_is_reported_as_stalled_once_per_interval()
    {
        var time = new FakeTimeProvider();
        var gate = new Gate();
        var log = new Warnings();
        using var client = new ResilientChatClient(gate, new ModelCallOptions { StallWarningAfter = TimeSpan.FromSeconds(30) }, log, time);
        var call = client.GetResponseAsync("q");
        await gate.Entered.Task;
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.Empty(log.Lines);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Single(log.Lines);
        Assert.Contains("stalled: 1 waiting more than 30 s", log.Lines[0], StringComparison.Ordinal);
        gate.Release.SetResult();
        await call;
    }
}
