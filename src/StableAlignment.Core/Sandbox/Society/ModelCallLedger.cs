using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ModelCalls;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// How a sandbox calls its models: it stamps each call with its stable id and the world's sampling settings, counts
/// the calls it has outstanding, and keeps the tokens of each call for the run, for its participant and for the
/// interaction the call belongs to (the log stores tokens per interaction). Concurrency, retries, timeouts and the
/// budget are the pipeline's (<see cref="ModelCallChatClientBuilderExtensions.UseModelCallPolicy"/>).
/// </summary>
internal sealed class ModelCallLedger(SandboxOptions options)
{
    private readonly ConcurrentDictionary<string, long[]> _usage = new(StringComparer.Ordinal);
    private long _tokensIn;
    private long _tokensOut;
    private int _outstanding;

    /// <summary>Token counters (in, out) of the interaction the current async flow belongs to, if any.</summary>
    internal static readonly AsyncLocal<long[]?> InteractionUsage = new();

    public long TokensIn => Interlocked.Read(ref _tokensIn);

    public long TokensOut => Interlocked.Read(ref _tokensOut);

    /// <summary>Calls this sandbox is waiting on (queued for a slot or running).</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Starts the counters of a new run.</summary>
    public void Reset()
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

    /// <summary>Sends one chat request and accounts its tokens.</summary>
    public async Task<ChatResponse> CallAsync(IChatClient client, IReadOnlyList<ChatMessage> messages, string callId, string participant,
        CancellationToken cancellationToken)
    {
        var chatOptions = new ChatOptions
        {
            Temperature = options.Temperature,
            MaxOutputTokens = options.MaxOutputTokens,
            AdditionalProperties = new AdditionalPropertiesDictionary { [ModelCallId.PropertyName] = callId },
        };
        ChatResponse response;
        Interlocked.Increment(ref _outstanding);
        try
        {
            response = await client.GetResponseAsync(messages, chatOptions, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _outstanding);
        }

        var (tokensIn, tokensOut) = TokenCounts.Of(messages, response);
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
        return response;
    }

    internal static string Participant(string kind, int id) => string.Create(CultureInfo.InvariantCulture, $"{kind}:{id}");
}
