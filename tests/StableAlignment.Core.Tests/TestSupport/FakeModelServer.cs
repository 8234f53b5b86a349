using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>What the fake server does with one request.</summary>
internal enum Fault
{
    /// <summary>Answers normally.</summary>
    None,

    /// <summary>HTTP 429 with <c>Retry-After: 1</c>.</summary>
    TooManyRequests,

    /// <summary>HTTP 500.</summary>
    ServerError,

    /// <summary>Never answers; the connection stays open until the client gives up.</summary>
    Hang,

    /// <summary>Sends the headers and half the body, then resets the connection.</summary>
    ResetMidBody,

    /// <summary>HTTP 200 whose body is not JSON.</summary>
    GarbageJson,

    /// <summary>HTTP 401 with the provider's error body.</summary>
    Unauthorized,

    /// <summary>Resets this request's connection and every open one, and refuses every connection until the test calls <see cref="FakeModelServer.Restart"/>.</summary>
    Outage,
}

/// <summary>
/// A fake model server on loopback, speaking the OpenAI chat-completions protocol (<c>POST /v1/chat/completions</c>) or
/// Ollama's (<c>POST /api/chat</c>), written on a raw <see cref="TcpListener"/> so every fault (a reset mid-body, a
/// refused connection, a restart on the same port) is exactly what a real network does. The replies come from a
/// function of the request's messages, so a run against it is deterministic whatever the faults. It counts requests
/// server-side, which is what the fault tests assert on.
/// </summary>
internal sealed class FakeModelServer : IAsyncDisposable
{
    private readonly bool _ollama;
    private readonly Func<IReadOnlyList<ChatMessage>, string> _reply;
    private readonly Lock _lock = new();
    private readonly List<Socket> _connections = [];
    private readonly List<string> _prompts = [];
    private readonly CancellationTokenSource _stop = new();
    private TcpListener? _listener;
    private Task _accepting = Task.CompletedTask;
    private int _requests;
    private int _answered;
    private int _outages;
    private TaskCompletionSource _outageStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts the server on a free loopback port.</summary>
    /// <param name="ollama">Speak Ollama's protocol instead of OpenAI's.</param>
    /// <param name="reply">The reply text for a request's messages.</param>
    /// <param name="fault">The fault for the n-th request (1-based, counted over the server's life); null: none.</param>
    /// <param name="apiKey">When set, requests without <c>Authorization: Bearer</c> this key get 401.</param>
    public FakeModelServer(bool ollama, Func<IReadOnlyList<ChatMessage>, string> reply, Func<int, Fault>? fault = null, string? apiKey = null)
    {
        _ollama = ollama;
        _reply = reply;
        FaultFor = fault ?? (_ => Fault.None);
        ApiKey = apiKey;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Listen();
    }

    public int Port { get; }

    /// <summary>The base URL a client is given: <c>http://127.0.0.1:port/v1</c> (OpenAI) or <c>http://127.0.0.1:port</c> (Ollama).</summary>
    public string BaseUrl => _ollama ? $"http://127.0.0.1:{Port}" : $"http://127.0.0.1:{Port}/v1";

    public Func<int, Fault> FaultFor { get; set; }

    public string? ApiKey { get; }

    /// <summary>Requests received (every HTTP request, faulted or not).</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Requests answered with a chat reply (HTTP 200 and a whole body).</summary>
    public int Answered => Volatile.Read(ref _answered);

    /// <summary>Outages served so far.</summary>
    public int Outages => Volatile.Read(ref _outages);

    /// <summary>The user messages of every request received, in arrival order.</summary>
    public IReadOnlyList<string> Prompts
    {
        get
        {
            lock (_lock) return [.. _prompts];
        }
    }

    /// <summary>Completes when an <see cref="Fault.Outage"/> begins (the server stops listening); a gate, not a clock, for the test.</summary>
    public Task OutageStarted
    {
        get
        {
            lock (_lock) return _outageStarted.Task;
        }
    }

    /// <summary>Ends an outage: the server listens on the same port again. The outage lasts until this is called.</summary>
    public void Restart()
    {
        lock (_lock)
        {
            if (_listener is not null || _stop.IsCancellationRequested) return;
            _outageStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        Listen();
    }

    private void Listen()
    {
        var listener = new TcpListener(IPAddress.Loopback, Port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        lock (_lock) _listener = listener;
        _accepting = AcceptLoopAsync(listener);
    }

    /// <summary>Refuses connections: the listening socket closes and every open connection is reset.</summary>
    private void Refuse()
    {
        lock (_lock)
        {
            _listener?.Stop();
            _listener = null;
            foreach (var c in _connections) Reset(c);
            _connections.Clear();
        }
    }

    private async Task AcceptLoopAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
                return;
            }
            lock (_lock) _connections.Add(socket);
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        try
        {
            using var stream = new NetworkStream(socket, ownsSocket: false);
            var reader = new RequestReader(stream);
            while (await reader.ReadAsync(_stop.Token) is { } request)
            {
                if (!await HandleAsync(socket, stream, request)) break;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            lock (_lock) _connections.Remove(socket);
            socket.Dispose();
        }
    }

    /// <summary>Answers one request; false closes the connection.</summary>
    private async Task<bool> HandleAsync(Socket socket, NetworkStream stream, Request request)
    {
        int n = Interlocked.Increment(ref _requests);
        var messages = ReadMessages(request.Body);
        lock (_lock) _prompts.AddRange(messages.Where(m => m.Role == ChatRole.User).Select(m => m.Text));
        string path = _ollama ? "/api/chat" : "/v1/chat/completions";
        if (request.Method != "POST" || request.Path != path)
        {
            await WriteAsync(stream, 404, "{\"error\":\"not found\"}");
            return true;
        }
        if (ApiKey is not null && request.Authorization != "Bearer " + ApiKey)
            return await UnauthorizedAsync(stream);

        switch (FaultFor(n))
        {
            case Fault.TooManyRequests:
                await WriteAsync(stream, 429, ErrorBody("Rate limit reached", "rate_limit_exceeded"), "Retry-After: 1\r\n");
                return true;
            case Fault.ServerError:
                await WriteAsync(stream, 500, ErrorBody("The server had an error", "server_error"));
                return true;
            case Fault.Hang:
                try
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
                return false;
            case Fault.ResetMidBody:
            {
                byte[] body = Encoding.UTF8.GetBytes(ReplyBody(messages));
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n"));
                await stream.WriteAsync(body.AsMemory(0, body.Length / 2));
                await stream.FlushAsync();
                Reset(socket);
                return false;
            }
            case Fault.GarbageJson:
                await WriteAsync(stream, 200, "<html><body>502 Bad Gateway</body></html> {\"choices\": [");
                return true;
            case Fault.Unauthorized:
                return await UnauthorizedAsync(stream);
            case Fault.Outage:
            {
                Interlocked.Increment(ref _outages);
                Refuse();
                lock (_lock) _outageStarted.TrySetResult();
                return false;
            }
        }
        await WriteAsync(stream, 200, ReplyBody(messages));
        Interlocked.Increment(ref _answered);
        return true;
    }

    private async Task<bool> UnauthorizedAsync(NetworkStream stream)
    {
        await WriteAsync(stream, 401, ErrorBody("Incorrect API key provided.", "invalid_api_key"));
        return true;
    }

    private string ErrorBody(string message, string code) => _ollama
        ? JsonSerializer.Serialize(new { error = message })
        : JsonSerializer.Serialize(new { error = new { message, type = "invalid_request_error", code } });

    private string ReplyBody(IReadOnlyList<ChatMessage> messages)
    {
        string text = _reply(messages);
        int tokensIn = messages.Sum(m => m.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
        int tokensOut = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        return _ollama
            ? JsonSerializer.Serialize(new
            {
                model = "fake-model",
                created_at = "2026-01-01T00:00:00Z",
                message = new { role = "assistant", content = text },
                done = true,
                done_reason = "stop",
                prompt_eval_count = tokensIn,
                eval_count = tokensOut,
            })
            : JsonSerializer.Serialize(new
            {
                id = "chatcmpl-fake",
                @object = "chat.completion",
                created = 1767225600,
                model = "fake-model",
                choices = new[] { new { index = 0, message = new { role = "assistant", content = text }, finish_reason = "stop" } },
                usage = new { prompt_tokens = tokensIn, completion_tokens = tokensOut, total_tokens = tokensIn + tokensOut },
            });
    }

    private static List<ChatMessage> ReadMessages(string body)
    {
        var list = new List<ChatMessage>();
        try
        {
            if (JsonNode.Parse(body)?["messages"] is not JsonArray messages) return list;
            foreach (var m in messages.OfType<JsonObject>())
            {
                string role = m["role"]?.GetValue<string>() ?? "user";
                var content = m["content"];
                string text = content switch
                {
                    JsonValue v => v.GetValue<string>(),
                    JsonArray parts => string.Concat(parts.OfType<JsonObject>().Select(p => p["text"]?.GetValue<string>() ?? "")),
                    _ => "",
                };
                list.Add(new ChatMessage(new ChatRole(role), text));
            }
        }
        catch (JsonException)
        {
        }
        return list;
    }

    private static async Task WriteAsync(NetworkStream stream, int status, string body, string extraHeaders = "")
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        string reason = status switch { 200 => "OK", 401 => "Unauthorized", 404 => "Not Found", 429 => "Too Many Requests", _ => "Internal Server Error" };
        string head = $"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {bytes.Length}\r\n{extraHeaders}\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(bytes);
        await stream.FlushAsync();
    }

    /// <summary>Closes with RST instead of FIN, as a crashed server or a dropped link does.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        Refuse();
        await _accepting;
        _stop.Dispose();
    }

    private sealed record Request(string Method, string Path, string? Authorization, string Body);

    /// <summary>Reads HTTP/1.1 requests off one connection: Content-Length or chunked bodies.</summary>
    private sealed class RequestReader(NetworkStream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        public async Task<Request?> ReadAsync(CancellationToken ct)
        {
            string? requestLine = await LineAsync(ct);
            if (string.IsNullOrEmpty(requestLine)) return null;
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            for (string? line = await LineAsync(ct); !string.IsNullOrEmpty(line); line = await LineAsync(ct))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0) headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }
            var body = new MemoryStream();
            if (headers.TryGetValue("Content-Length", out string? length))
            {
                await CopyAsync(body, int.Parse(length, System.Globalization.CultureInfo.InvariantCulture), ct);
            }
            else if (headers.TryGetValue("Transfer-Encoding", out string? te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                while (true)
                {
                    string size = (await LineAsync(ct) ?? "0").Split(';')[0].Trim();
                    int n = Convert.ToInt32(size, 16);
                    if (n == 0)
                    {
                        await LineAsync(ct);
                        break;
                    }
                    await CopyAsync(body, n, ct);
                    await LineAsync(ct);
                }
            }
            string[] parts = requestLine.Split(' ');
            return new Request(parts[0], parts.Length > 1 ? parts[1] : "/", headers.GetValueOrDefault("Authorization"),
                Encoding.UTF8.GetString(body.ToArray()));
        }

        private async Task<bool> FillAsync(CancellationToken ct)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            int read = await stream.ReadAsync(_buffer.AsMemory(_end), ct);
            _end += read;
            return read > 0;
        }

        private async Task<string?> LineAsync(CancellationToken ct)
        {
            var line = new StringBuilder();
            while (true)
            {
                for (; _start < _end; _start++)
                {
                    char c = (char)_buffer[_start];
                    if (c == '\n')
                    {
                        _start++;
                        return line.ToString().TrimEnd('\r');
                    }
                    line.Append(c);
                }
                if (!await FillAsync(ct)) return line.Length == 0 ? null : line.ToString();
            }
        }

        private async Task CopyAsync(Stream target, int count, CancellationToken ct)
        {
            while (count > 0)
            {
                if (_start == _end && !await FillAsync(ct)) throw new IOException("The request body ended early.");
                int n = Math.Min(count, _end - _start);
                target.Write(_buffer, _start, n);
                _start += n;
                count -= n;
            }
        }
    }
}
