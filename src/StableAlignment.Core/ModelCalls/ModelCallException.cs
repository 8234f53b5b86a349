using System.Globalization;
using StableAlignment.Core.Serialization;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// A model call that failed for good, after the pipeline's retries, for a reason the user can act on: the server is
/// unreachable (<see cref="ModelServerUnavailableException"/>) or it refused the call or answered something unreadable
/// (<see cref="ModelCallRejectedException"/>). The message names the endpoint and quotes at most 200 characters of
/// the server's reply; <see cref="Exception.InnerException"/> is the provider's last exception.
/// </summary>
public class ModelCallException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelCallException() { }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What failed.</param>
    public ModelCallException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="innerException">The provider's exception.</param>
    public ModelCallException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception for a model server.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="endpoint">The server's address, when the client says (<c>ChatClientMetadata.ProviderUri</c>).</param>
    /// <param name="modelId">The model asked for, when the client says.</param>
    /// <param name="innerException">The provider's last exception.</param>
    public ModelCallException(string message, Uri? endpoint, string? modelId, Exception? innerException) : base(message, innerException)
    {
        Endpoint = endpoint;
        ModelId = modelId;
    }

    /// <summary>The server's address, when the client says.</summary>
    public Uri? Endpoint { get; }

    /// <summary>The model asked for, when the client says.</summary>
    public string? ModelId { get; }

    /// <summary>"model server X (model m)" for messages, or "the model" when the client names neither.</summary>
    internal static string Describe(Uri? endpoint, string? modelId) =>
        (endpoint, modelId) switch
        {
            (null, null) => "the model",
            (null, _) => $"model '{modelId}'",
            (_, null) => $"model server {endpoint}",
            _ => $"model server {endpoint} (model '{modelId}')",
        };

    /// <summary>"Type: message" of a provider exception, quoted as user data.</summary>
    internal static string Cause(Exception? exception)
    {
        // The interesting part of an SDK's wrapper is often its inner exception (e.g. "Connection refused").
        var e = exception;
        while (e is { InnerException: { } inner } && (e.Message.Length == 0 || e.Message.StartsWith("An error occurred while sending", StringComparison.Ordinal)))
            e = inner;
        return e is null ? "no details" : UserText.Excerpt($"{e.GetType().Name}: {e.Message}");
    }
}

/// <summary>
/// The model server did not answer for longer than <see cref="ModelCallOptions.OutageTolerance"/> (connections
/// refused or reset, timeouts, HTTP 408/429/5xx throughout). Nothing is wrong with the request: once the server is
/// back, the same call can succeed, so a run that stops on this resumes where it stopped.
/// </summary>
public sealed class ModelServerUnavailableException : ModelCallException
{
    /// <summary>Creates the exception.</summary>
    public ModelServerUnavailableException() { }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What failed.</param>
    public ModelServerUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="innerException">The provider's last exception.</param>
    public ModelServerUnavailableException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception for an outage.</summary>
    /// <param name="unavailableSince">When the outage began, as the pipeline saw it.</param>
    /// <param name="now">When the pipeline gave up.</param>
    /// <param name="tolerance">The outage tolerance that was exceeded.</param>
    /// <param name="endpoint">The server's address, when known.</param>
    /// <param name="modelId">The model, when known.</param>
    /// <param name="innerException">The last failure.</param>
    public ModelServerUnavailableException(DateTimeOffset unavailableSince, DateTimeOffset now, TimeSpan tolerance, Uri? endpoint, string? modelId,
        Exception? innerException)
        : base(string.Create(CultureInfo.InvariantCulture,
                $"{Describe(endpoint, modelId)} unreachable since {unavailableSince.UtcDateTime:HH:mm:ss} UTC ({(now - unavailableSince).TotalSeconds:F0} s, longer than the outage tolerance of {tolerance.TotalSeconds:F0} s; last error: {Cause(innerException)})"),
            endpoint, modelId, innerException)
    {
        UnavailableSince = unavailableSince;
        Tolerance = tolerance;
    }

    /// <summary>When the outage began, as the pipeline saw it.</summary>
    public DateTimeOffset UnavailableSince { get; }

    /// <summary>The outage tolerance that was exceeded.</summary>
    public TimeSpan Tolerance { get; }
}

/// <summary>
/// The model server refused a call (an HTTP status that retrying cannot change: 400, 401, 403, 404, 422, ...) or
/// answered with something that is not a chat reply. Retrying the same call will fail the same way: the key, the
/// model name, the address or the server needs fixing.
/// </summary>
public sealed class ModelCallRejectedException : ModelCallException
{
    /// <summary>Creates the exception.</summary>
    public ModelCallRejectedException() { }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What failed.</param>
    public ModelCallRejectedException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="innerException">The provider's exception.</param>
    public ModelCallRejectedException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception for a refused or unreadable call.</summary>
    /// <param name="status">The HTTP status; null when the reply could not be read.</param>
    /// <param name="endpoint">The server's address, when known.</param>
    /// <param name="modelId">The model, when known.</param>
    /// <param name="innerException">The provider's exception.</param>
    public ModelCallRejectedException(int? status, Uri? endpoint, string? modelId, Exception innerException)
        : base(status is int code
                ? string.Create(CultureInfo.InvariantCulture, $"{Describe(endpoint, modelId)} refused the call with HTTP {code}{Hint(code)} ({Cause(innerException)})")
                : $"{Describe(endpoint, modelId)} answered with something that is not a chat reply ({Cause(innerException)})",
            endpoint, modelId, innerException) =>
        Status = status;

    /// <summary>The HTTP status, or null when the reply could not be read.</summary>
    public int? Status { get; }

    /// <summary>Whether the server refused the credentials (HTTP 401 or 403): the API key is missing or wrong.</summary>
    public bool IsAuthenticationFailure => Status is 401 or 403;

    private static string Hint(int status) => status switch
    {
        401 or 403 => ": the API key is missing or wrong",
        404 => ": no such model or endpoint",
        _ => "",
    };
}
