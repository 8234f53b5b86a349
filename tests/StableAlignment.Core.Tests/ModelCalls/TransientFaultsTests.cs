using System.Net;
using StableAlignment.Core.ModelCalls;

namespace StableAlignment.Core.Tests.ModelCalls;

public sealed class TransientFaultsTests
{
    private sealed class StatusException(int status) : Exception("provider error")
    {
        public int Status { get; } = status;
    }

    [Fact]
    public void Transient_classification()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.True(TransientFaults.IsTransient(new HttpRequestException("x", null, HttpStatusCode.TooManyRequests), default));
        Assert.True(TransientFaults.IsTransient(new HttpRequestException("x", null, HttpStatusCode.ServiceUnavailable), default));
        Assert.True(TransientFaults.IsTransient(new HttpRequestException("network down"), default));
        Assert.False(TransientFaults.IsTransient(new HttpRequestException("x", null, HttpStatusCode.Unauthorized), default));
        Assert.True(TransientFaults.IsTransient(new TimeoutException(), default));
        Assert.True(TransientFaults.IsTransient(new TaskCanceledException(), default));
        Assert.False(TransientFaults.IsTransient(new TaskCanceledException(), cancelled.Token));
        Assert.True(TransientFaults.IsTransient(new StatusException(502), default));
        Assert.False(TransientFaults.IsTransient(new StatusException(404), default));
        Assert.False(TransientFaults.IsTransient(new InvalidOperationException(), default));
    }

    [Fact]
    public void No_response_at_all_and_an_sdks_own_exhausted_retries_are_transient()
    {
        // System.ClientModel reports "no response came" as status 0; the OpenAI SDK wraps its own retries in an AggregateException.
        Assert.True(TransientFaults.IsTransient(new StatusException(0), default));
        var refused = new AggregateException("Retry failed after 4 tries", [new HttpRequestException("Connection refused"), new HttpRequestException("Connection refused")]);
        Assert.True(TransientFaults.IsTransient(refused, default));
        var mixed = new AggregateException([new HttpRequestException("Connection refused"), new HttpRequestException("x", null, HttpStatusCode.Unauthorized)]);
        Assert.False(TransientFaults.IsTransient(mixed, default));
    }

    [Fact]
    public void Retry_after_is_read_as_seconds_or_as_an_http_date()
    {
        var now = new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
        var seconds = new HttpRequestException("x");
        seconds.Data["Retry-After"] = "7";
        Assert.Equal(TimeSpan.FromSeconds(7), TransientFaults.RetryAfter(seconds, now));
        var date = new HttpRequestException("x");
        date.Data["Retry-After"] = "Tue, 01 Dec 2026 12:00:30 GMT";
        Assert.Equal(TimeSpan.FromSeconds(30), TransientFaults.RetryAfter(new InvalidOperationException("outer", date), now));
        Assert.Null(TransientFaults.RetryAfter(new HttpRequestException("none"), now));
    }
}
