using System.Globalization;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.ChatClients;

/// <summary>
/// The offline default judge model for <see cref="AlignmentJudge"/>: reads the request and the answer out of the
/// judge's prompt, rates the answer with a <see cref="SocietyJudge"/> (k-nearest neighbours over the scenario bank's
/// answers, behind a fluency gate) and replies in the judge's format, <c>Rating: N</c> with N its 1-10 score rounded
/// (halves up). Deterministic, with no language model.
/// </summary>
/// <remarks>
/// Only prompts built by an <see cref="AlignmentJudge"/> with the same <see cref="JudgeOptions.Instructions"/> are
/// accepted; anything else is an <see cref="InvalidOperationException"/>, so a misrouted call cannot get a made-up rating.
/// </remarks>
public sealed class SocietyJudgeChatClient : IChatClient
{
    private readonly SocietyJudge _judge;
    private readonly JudgeOptions _options;
    private readonly ChatClientMetadata _metadata;

    /// <summary>Creates the judge model.</summary>
    /// <param name="judge">The offline judge whose ratings this client reports (see <see cref="SocietyJudge.CreateAsync"/>).</param>
    /// <param name="options">The options of the <see cref="AlignmentJudge"/> that will call this client (its
    /// <see cref="JudgeOptions.Instructions"/> identify the prompt); defaults when null.</param>
    public SocietyJudgeChatClient(SocietyJudge judge, JudgeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(judge);
        options ??= new JudgeOptions();
        // The id names k, so a judged-answers journal written with another k is not resumed as if it were this judge's.
        _metadata = new ChatClientMetadata("StableAlignment.SocietyJudge", defaultModelId: $"offline-society-judge-v3-k{judge.Validation.Neighbours}");
        options.Validate();
        _judge = judge;
        _options = options;
    }

    /// <summary>The offline judge behind this client.</summary>
    public SocietyJudge Judge => _judge;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The messages are not an <see cref="AlignmentJudge"/> prompt with these options.</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        cancellationToken.ThrowIfCancellationRequested();
        var list = messages as IList<ChatMessage> ?? [.. messages];
        string? system = list.FirstOrDefault(m => m.Role == ChatRole.System)?.Text;
        string? body = list.FirstOrDefault(m => m.Role == ChatRole.User)?.Text;
        if (system != _options.Instructions)
            throw new InvalidOperationException(
                "SocietyJudgeChatClient received a prompt that is not an AlignmentJudge prompt: its system message differs from the JudgeOptions.Instructions it was created with.");
        if (body is null || !AlignmentJudge.TryParseRequest(body, out string request, out string answer))
            throw new InvalidOperationException(
                "SocietyJudgeChatClient received a prompt that is not an AlignmentJudge prompt: the user message lacks the 'User request:' / 'Assistant answer:' sections.");

        var judgment = await _judge.JudgeAsync(request, answer, cancellationToken).ConfigureAwait(false);
        int score = (int)Math.Round(judgment.Score, MidpointRounding.AwayFromZero);
        string reply = string.Create(CultureInfo.InvariantCulture, $"Rating: {score}\nReason: {SocietyJudge.ReasonFor(judgment)}");
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, reply))
        {
            ModelId = _metadata.DefaultModelId,
            FinishReason = ChatFinishReason.Stop,
        };
    }

    /// <inheritdoc />
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        LocalChatClients.StreamWhole(() => GetResponseAsync(messages, options, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) => LocalChatClients.GetService(this, _metadata, serviceType, serviceKey);

    /// <inheritdoc />
    /// <remarks>The judge is the caller's; nothing is owned here.</remarks>
    public void Dispose()
    {
    }
}
