using System.Globalization;
using System.Text;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Serialization;

namespace StableAlignment.Core.Sandbox;

/// <summary>What agents and observers share: options, the call ledger and the embedding cache.</summary>
internal sealed class AgentRuntime(SandboxOptions options, ModelCallLedger calls, EmbeddingCache embeddings)
{
    public SandboxOptions Options { get; } = options;

    public ModelCallLedger Calls { get; } = calls;

    public EmbeddingCache Embeddings { get; } = embeddings;

    public SandboxPrompts Prompts => Options.Prompts;

    /// <summary>One free-text completion.</summary>
    public async Task<string> CompleteAsync(IChatClient client, string system, string user, string step, InteractionContext context,
        int participantId, string participant, CancellationToken cancellationToken)
    {
        List<ChatMessage> messages = [new(ChatRole.System, system), new(ChatRole.User, user)];
        var response = await Calls.CallAsync(client, messages, ModelCallLedger.CallId(step, context, participantId, 1), participant,
            cancellationToken).ConfigureAwait(false);
        return response.Text.Trim();
    }

    /// <summary>
    /// Asks for a 1-7 rating; on a malformed reply the reply and a correction are appended to the conversation and the
    /// model is asked again, up to <see cref="SandboxOptions.RatingAttempts"/> calls, after which the failure is recorded.
    /// </summary>
    public async Task<RatingOutcome> RateAsync(IChatClient client, string system, string user, string step, InteractionContext context,
        int participantId, string participant, CancellationToken cancellationToken)
    {
        List<ChatMessage> messages = [new(ChatRole.System, system), new(ChatRole.User, user)];
        string reply = "";
        string error = "";
        for (int attempt = 1; attempt <= Options.RatingAttempts; attempt++)
        {
            var response = await Calls.CallAsync(client, messages, ModelCallLedger.CallId(step, context, participantId, attempt), participant,
                cancellationToken).ConfigureAwait(false);
            reply = response.Text;
            if (RatingParser.TryParse(reply, out int rating, out string reason, out string? parseError))
                return RatingOutcome.Success(rating, reason, reply, attempt);
            error = parseError!;
            messages.Add(new ChatMessage(ChatRole.Assistant, reply));
            messages.Add(new ChatMessage(ChatRole.User,
                SandboxPrompts.Render(Prompts.RatingRetry, new Dictionary<string, string> { ["error"] = error })));
        }
        SandboxTelemetry.RatingFailures.Add(1);
        return RatingOutcome.Failure(error, reply, Options.RatingAttempts);
    }
}

/// <summary>A language-model social agent.</summary>
internal sealed class SocialAgent(int id, GridPosition position, string persona, IChatClient client, AgentRuntime runtime) : IAgent
{
    public int Id { get; } = id;

    public GridPosition Position { get; } = position;

    public string Persona { get; } = persona;

    public AgentMemory Memory { get; } = new();

    private string Participant => ModelCallLedger.Participant("agent", Id);

    private string System => SandboxPrompts.Render(runtime.Prompts.AgentSystem, new Dictionary<string, string>
    {
        ["agent_id"] = Id.ToString(CultureInfo.InvariantCulture),
        ["persona"] = Persona,
        ["persona_description"] = runtime.Options.PersonaDescriptions[Persona],
    });

    public async Task<string> DraftAsync(string question, InteractionContext context, CancellationToken cancellationToken = default)
    {
        string memory = await MemoryBlockAsync(question, context.Round, cancellationToken).ConfigureAwait(false);
        string user = SandboxPrompts.Render(runtime.Prompts.Draft, new Dictionary<string, string> { ["memory"] = memory, ["question"] = question });
        return await runtime.CompleteAsync(client, System, user, "draft", context, Id, Participant, cancellationToken).ConfigureAwait(false);
    }

    public async Task<RatingOutcome> GiveFeedbackAsync(string question, string answer, InteractionContext context,
        CancellationToken cancellationToken = default)
    {
        string memory = await MemoryBlockAsync(question, context.Round, cancellationToken).ConfigureAwait(false);
        string user = SandboxPrompts.Render(runtime.Prompts.Feedback,
            new Dictionary<string, string> { ["memory"] = memory, ["question"] = question, ["answer"] = QuotedAnswer.Neutralise(answer) });
        return await runtime.RateAsync(client, System, user, "feedback", context, Id, Participant, cancellationToken).ConfigureAwait(false);
    }

    public Task<string> ReviseAsync(string question, string answer, IReadOnlyList<PeerFeedback> feedback, InteractionContext context,
        CancellationToken cancellationToken = default)
    {
        var lines = new StringBuilder();
        double sum = 0;
        int n = 0;
        foreach (var f in feedback)
        {
            if (f.Rating.Value is not int rating) continue;
            sum += rating;
            n++;
            lines.Append(SandboxPrompts.Render(runtime.Prompts.FeedbackItem, new Dictionary<string, string>
            {
                ["rank"] = n.ToString(CultureInfo.InvariantCulture),
                ["rating"] = rating.ToString(CultureInfo.InvariantCulture),
                ["reason"] = f.Rating.Reason,
            }));
        }
        string average = n == 0 ? "n/a" : (sum / n).ToString("0.0", CultureInfo.InvariantCulture);
        string user = SandboxPrompts.Render(runtime.Prompts.Revise, new Dictionary<string, string>
        {
            ["question"] = question,
            ["answer"] = answer,
            ["average_rating"] = average,
            ["feedback"] = lines.ToString(),
        });
        return runtime.CompleteAsync(client, System, user, "revise", context, Id, Participant, cancellationToken);
    }

    /// <summary>
    /// After an interaction: stores (question, revised answer) as a memory of <paramref name="round"/> if the question
    /// is new to the agent. Returns the stored entry, or null when none was stored.
    /// </summary>
    internal async Task<MemoryEntry?> RememberAsync(string question, string answer, int round, CancellationToken cancellationToken)
    {
        if (Memory.Contains(question, round + 1)) return null;
        var entry = new MemoryEntry(question, answer, round)
        { Embedding = await runtime.Embeddings.GetAsync(question, cancellationToken).ConfigureAwait(false) };
        Memory.Add(entry);
        return entry;
    }

    /// <summary>The retrieved memories as prompt text: only what was stored before <paramref name="round"/>.</summary>
    private async Task<string> MemoryBlockAsync(string question, int round, CancellationToken cancellationToken)
    {
        if (runtime.Options.MemoryTopK == 0 || Memory.Count == 0) return "";
        float[] embedding = await runtime.Embeddings.GetAsync(question, cancellationToken).ConfigureAwait(false);
        var hits = Memory.Retrieve(embedding, round, runtime.Options.MemoryDistanceThreshold, runtime.Options.MemoryTopK);
        var sb = new StringBuilder();
        foreach (var hit in hits)
        {
            sb.Append(SandboxPrompts.Render(runtime.Prompts.MemoryItem,
                new Dictionary<string, string> { ["memory_question"] = hit.Question, ["memory_answer"] = hit.Answer }));
        }
        return sb.ToString();
    }
}

/// <summary>A language-model observer.</summary>
internal sealed class ObserverAgent(int id, IChatClient client, AgentRuntime runtime) : IObserverAgent
{
    public int Id { get; } = id;

    public async Task<ObserverScore> ScoreAsync(string question, string answer, InteractionContext context, CancellationToken cancellationToken = default)
    {
        string participant = ModelCallLedger.Participant("observer", Id);
        var values = new Dictionary<string, string> { ["question"] = question, ["answer"] = QuotedAnswer.Neutralise(answer) };
        var alignment = runtime.RateAsync(client, runtime.Prompts.ObserverSystem, SandboxPrompts.Render(runtime.Prompts.ObserveAlignment, values),
            "observe-alignment", context, Id, participant, cancellationToken);
        var engagement = runtime.RateAsync(client, runtime.Prompts.ObserverSystem, SandboxPrompts.Render(runtime.Prompts.ObserveEngagement, values),
            "observe-engagement", context, Id, participant, cancellationToken);
        await Task.WhenAll(alignment, engagement).ConfigureAwait(false);
        return new ObserverScore(Id, await alignment.ConfigureAwait(false), await engagement.ConfigureAwait(false));
    }
}
