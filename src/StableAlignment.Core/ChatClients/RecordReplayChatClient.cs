using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.ChatClients;

/// <summary>What <see cref="RecordReplayChatClient"/> does with a call.</summary>
public enum ReplayMode
{
    /// <summary>Call the real model and store its response.</summary>
    Record,

    /// <summary>Answer only from stored responses; a call with none fails with <see cref="KeyNotFoundException"/>.</summary>
    Replay,

    /// <summary>Answer from a stored response when there is one, otherwise call the model and store the response.</summary>
    ReplayOrRecord,
}

/// <summary>
/// Records a real model's responses to a SQLite file and replays them later, so a real-model sandbox run can be
/// replayed offline, exactly. Responses are keyed by <see cref="KeyOf"/>: a SHA-256 of a canonical text that this
/// library defines and versions itself (the sandbox's stable call id, the messages, the temperature and the token
/// limit), so keys do not depend on any provider's or runtime's serialisation. The recorded model's name
/// (<see cref="ChatClientMetadata"/>) is stored too, and a replayer names that model, so the replayed log has the
/// recorded log's provenance.
/// </summary>
public sealed class RecordReplayChatClient : DelegatingChatClient
{
    private const string KeyVersion = "stable-alignment-replay/1";
    private readonly ReplayMode _mode;
    private readonly SqliteConnection _store;
    private readonly Lock _lock = new();
    private readonly ChatClientMetadata? _recorded;

    /// <summary>Creates the client.</summary>
    /// <param name="storePath">The SQLite file that holds the responses (created if missing).</param>
    /// <param name="mode">Record, replay, or replay with fallback to recording.</param>
    /// <param name="inner">The real model; may be <see langword="null"/> only in <see cref="ReplayMode.Replay"/>.</param>
    public RecordReplayChatClient(string storePath, ReplayMode mode, IChatClient? inner = null)
        : base(inner ?? ReplayOnly.Instance)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(storePath);
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown replay mode.");
        if (inner is null && mode != ReplayMode.Replay)
            throw new ArgumentNullException(nameof(inner), $"A model client is required in {mode} mode.");
        if (mode == ReplayMode.Replay && !File.Exists(storePath))
            throw new FileNotFoundException($"Replay store '{storePath}' does not exist.", storePath);
        _mode = mode;
        _store = SandboxLog.Open(storePath, SqliteOpenMode.ReadWriteCreate);
        using var c = _store.CreateCommand();
        c.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, model_id TEXT,
                tokens_in INTEGER, tokens_out INTEGER);
            CREATE TABLE IF NOT EXISTS model (key TEXT PRIMARY KEY, value TEXT);
            """;
        c.ExecuteNonQuery();
        if (inner?.GetService<ChatClientMetadata>() is { } metadata)
        {
            using var write = _store.CreateCommand();
            write.CommandText = "INSERT OR REPLACE INTO model (key, value) VALUES ('provider', $p), ('model', $m)";
            write.Parameters.AddWithValue("$p", (object?)metadata.ProviderName ?? DBNull.Value);
            write.Parameters.AddWithValue("$m", (object?)metadata.DefaultModelId ?? DBNull.Value);
            write.ExecuteNonQuery();
        }
        using var read = _store.CreateCommand();
        read.CommandText = "SELECT (SELECT value FROM model WHERE key = 'provider'), (SELECT value FROM model WHERE key = 'model')";
        using var row = read.ExecuteReader();
        if (row.Read() && !(row.IsDBNull(0) && row.IsDBNull(1)))
            _recorded = new ChatClientMetadata(row.IsDBNull(0) ? null : row.GetString(0), defaultModelId: row.IsDBNull(1) ? null : row.GetString(1));
    }

    /// <inheritdoc />
    /// <remarks>In <see cref="ReplayMode.Replay"/>, <see cref="ChatClientMetadata"/> names the recorded model.</remarks>
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return _mode == ReplayMode.Replay && serviceKey is null && serviceType == typeof(ChatClientMetadata) && _recorded is not null
            ? _recorded : base.GetService(serviceType, serviceKey);
    }

    /// <summary>The replay key of a request: lower-case hex SHA-256 of its canonical text.</summary>
    public static string KeyOf(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var sb = new StringBuilder(KeyVersion).Append('\n');
        sb.Append("call=").Append(ModelCallId.Of(options)).Append('\n');
        sb.Append("temperature=").Append(options?.Temperature?.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("max_tokens=").Append(options?.MaxOutputTokens?.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var m in messages)
        {
            sb.Append(m.Role.Value).Append('\u001f').Append(m.Text.Replace("\r\n", "\n", StringComparison.Ordinal)).Append('\u001e');
        }
        return StableHash.Sha256Hex(sb.ToString());
    }

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? [.. messages];
        string key = KeyOf(list, options);
        if (_mode != ReplayMode.Record && TryLoad(key) is { } stored) return stored;
        if (_mode == ReplayMode.Replay)
            throw new KeyNotFoundException($"No recorded response for replay key {key} (call '{ModelCallId.Of(options)}'); record the run first.");
        var response = await base.GetResponseAsync(list, options, cancellationToken).ConfigureAwait(false);
        Save(key, response);
        return response;
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    private ChatResponse? TryLoad(string key)
    {
        lock (_lock)
        {
            using var c = _store.CreateCommand();
            c.CommandText = "SELECT text, model_id, tokens_in, tokens_out FROM responses WHERE key = $key";
            c.Parameters.AddWithValue("$key", key);
            using var r = c.ExecuteReader();
            if (!r.Read()) return null;
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, r.GetString(0)))
            {
                ModelId = r.IsDBNull(1) ? null : r.GetString(1),
                Usage = new UsageDetails
                {
                    InputTokenCount = r.IsDBNull(2) ? null : r.GetInt64(2),
                    OutputTokenCount = r.IsDBNull(3) ? null : r.GetInt64(3),
                },
            };
        }
    }

    private void Save(string key, ChatResponse response)
    {
        lock (_lock)
        {
            using var c = _store.CreateCommand();
            c.CommandText = "INSERT OR REPLACE INTO responses (key, text, model_id, tokens_in, tokens_out) VALUES ($key, $text, $model, $in, $out)";
            c.Parameters.AddWithValue("$key", key);
            c.Parameters.AddWithValue("$text", response.Text);
            c.Parameters.AddWithValue("$model", (object?)response.ModelId ?? DBNull.Value);
            c.Parameters.AddWithValue("$in", (object?)response.Usage?.InputTokenCount ?? DBNull.Value);
            c.Parameters.AddWithValue("$out", (object?)response.Usage?.OutputTokenCount ?? DBNull.Value);
            c.ExecuteNonQuery();
        }
    }

    /// <summary>Closes the store and, as every <see cref="DelegatingChatClient"/> does, disposes the inner client.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _store.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>Stands in for the model in replay-only mode; it is never called, because a missing response fails first.</summary>
    private sealed class ReplayOnly : IChatClient
    {
        public static readonly ReplayOnly Instance = new();

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("A replay-only store has no model to call.");

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("A replay-only store has no model to call.");

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
