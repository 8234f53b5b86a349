using System.Globalization;
using System.Net;
using System.Reflection;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// Which failures of a model call are worth retrying, and how long a server asked to wait. Provider SDK exceptions
/// are recognised by shape (a <c>Status</c> or <c>StatusCode</c> property, a <c>GetRawResponse()</c> with headers), so
/// the core library needs no provider package.
/// </summary>
internal static class TransientFaults
{
    /// <summary>
    /// Transient: HTTP 408/429/5xx, no status at all (no response came: refused, reset, DNS), timeouts, and
    /// cancellations the caller did not ask for (e.g. HttpClient's own timeout). An <see cref="AggregateException"/>
    /// (an SDK's own retries) is transient when every inner exception is.
    /// </summary>
    public static bool IsTransient(Exception exception, CancellationToken callerToken)
    {
        switch (exception)
        {
            case ModelCallException:
                // An inner pipeline already retried and gave up; retrying it again would multiply the waits.
                return false;
            case TimeoutException:
                return true;
            case OperationCanceledException:
                return !callerToken.IsCancellationRequested;
            case HttpRequestException http:
                return http.StatusCode is null || IsTransientStatus((int)http.StatusCode.Value);
            case AggregateException aggregate:
                var inner = aggregate.Flatten().InnerExceptions;
                return inner.Count > 0 && inner.All(e => IsTransient(e, callerToken));
            case IOException:
                return true;
        }
        return Status(exception) switch
        {
            0 => true,
            int code => IsTransientStatus(code),
            null => exception.InnerException is { } inner && IsTransient(inner, callerToken),
        };
    }

    private static bool IsTransientStatus(int code) => code is 408 or 429 || code >= 500;

    /// <summary>The HTTP status of a failed call (a provider exception's, or an <see cref="HttpRequestException"/>'s), or null.</summary>
    public static int? HttpStatus(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException { StatusCode: { } code }) return (int)code;
            if (Status(e) is int status and > 0) return status;
        }
        return null;
    }

    /// <summary>Whether the server answered with something that is not a chat reply (the SDK could not parse it).</summary>
    public static bool IsUnreadableReply(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is System.Text.Json.JsonException or FormatException) return true;
        }
        return false;
    }

    /// <summary>The HTTP status a provider exception carries, 0 when it says no response came, or null when it has none.</summary>
    private static int? Status(Exception exception)
    {
        var type = exception.GetType();
        object? status = type.GetProperty("Status")?.GetValue(exception) ?? type.GetProperty("StatusCode")?.GetValue(exception);
        return status switch
        {
            int code => code,
            HttpStatusCode code => (int)code,
            _ => null,
        };
    }

    /// <summary>
    /// The delay a server asked for with <c>Retry-After</c> (seconds or an HTTP date), read from a provider exception's
    /// raw response headers or from <see cref="Exception.Data"/>["Retry-After"]; null when there is none.
    /// </summary>
    public static TimeSpan? RetryAfter(Exception? exception, DateTimeOffset now)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            string? value = e.Data["Retry-After"] as string ?? HeaderOf(e, "Retry-After");
            if (value is null) continue;
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds >= 0)
                return TimeSpan.FromSeconds(seconds);
            if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date))
                return date > now ? date - now : TimeSpan.Zero;
        }
        return null;
    }

    // System.ClientModel's ClientResultException (OpenAI SDK): GetRawResponse().Headers.TryGetValue(name, out string value).
    private static string? HeaderOf(Exception exception, string name)
    {
        object? response = exception.GetType().GetMethod("GetRawResponse", BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes)?.Invoke(exception, null);
        object? headers = response?.GetType().GetProperty("Headers")?.GetValue(response);
        var tryGet = headers?.GetType().GetMethod("TryGetValue", [typeof(string), typeof(string).MakeByRefType()]);
        if (tryGet is null) return null;
        object?[] args = [name, null];
        return tryGet.Invoke(headers, args) is true ? args[1] as string : null;
    }
}
