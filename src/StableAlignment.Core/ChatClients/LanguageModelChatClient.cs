using System.Text;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Models;

namespace StableAlignment.Core.ChatClients;

/// <summary>
/// An <see cref="IChatClient"/> over a local <see cref="CausalLanguageModel"/>, so a trained model can join the
/// Sandbox as an agent or observer. Messages are rendered in the Alpaca-style template the training data uses
/// (<c>### Instruction:</c> ... <c>### Response:</c>); generation stops at the next <c>### </c> header.
/// Calls are serialised: the model runs one generation at a time.
/// </summary>
public sealed class LanguageModelChatClient : IChatClient
{
    private const string ResponseHeader = "### Response:\n";
    private const string HeaderStop = "\n### ";

    private readonly TextGenerator _generator;
    private readonly GenerationOptions _defaults;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ChatClientMetadata _metadata;

    /// <summary>Creates the adapter.</summary>
    /// <param name="generator">The model and tokenizer.</param>
    /// <param name="modelId">The name reported as the model id.</param>
    /// <param name="defaults">Decoding defaults; <see cref="ChatOptions"/> of a call override them. Null: greedy, 128 tokens.</param>
    public LanguageModelChatClient(TextGenerator generator, string modelId = "stable-alignment-local", GenerationOptions? defaults = null)
    {
        _generator = generator ?? throw new ArgumentNullException(nameof(generator));
        ArgumentException.ThrowIfNullOrWhiteSpace(modelId);
        _defaults = (defaults ?? new GenerationOptions()).Validate();
        _metadata = new ChatClientMetadata("StableAlignment.Core", null, modelId);
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var prompt = RenderPrompt(messages, options?.Instructions);
        var generation = Merge(options);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Generation is CPU/GPU bound: keep it off the caller's context.
            var result = await Task.Run(() => _generator.Generate(prompt, generation, cancellationToken), cancellationToken).ConfigureAwait(false);
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text.Trim()))
            {
                ModelId = _metadata.DefaultModelId,
                FinishReason = result.FinishReason == GenerationFinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
                Usage = new UsageDetails
                {
                    InputTokenCount = _generator.Tokenizer.CountTokens(prompt),
                    OutputTokenCount = result.TokenIds.Count,
                },
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>The whole response is produced first and returned as one update.</remarks>
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        LocalChatClients.StreamWhole(() => GetResponseAsync(messages, options, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return LocalChatClients.GetService(this, _metadata, serviceType, serviceKey)
            ?? (serviceKey is null && serviceType.IsInstanceOfType(_generator) ? _generator : null);
    }

    /// <inheritdoc />
    public void Dispose() => _gate.Dispose();

    /// <summary>
    /// Renders a conversation: system text first, then each user turn as an instruction block and each
    /// assistant turn as its response, ending with an open response header.
    /// </summary>
    internal static string RenderPrompt(IEnumerable<ChatMessage> messages, string? instructions)
    {
        var text = new StringBuilder();
        var system = messages.Where(m => m.Role == ChatRole.System).Select(m => m.Text).Prepend(instructions).Where(t => !string.IsNullOrWhiteSpace(t)).ToList();
        if (system.Count > 0) text.Append(string.Join("\n", system)).Append("\n\n");
        foreach (var message in messages.Where(m => m.Role != ChatRole.System))
        {
            if (message.Role == ChatRole.Assistant) text.Append(ResponseHeader).Append(message.Text).Append("\n\n");
            else text.Append("### Instruction:\n").Append(message.Text).Append("\n\n");
        }
        return text.Append(ResponseHeader).ToString();
    }

    /// <summary>The key of <see cref="ChatOptions.AdditionalProperties"/> that sets <see cref="GenerationOptions.RepetitionPenalty"/>, as OpenAI-compatible servers (vLLM, llama.cpp) name it.</summary>
    public const string RepetitionPenaltyKey = "repetition_penalty";

    private static double? RepetitionPenaltyOf(ChatOptions options) =>
        options.AdditionalProperties?.TryGetValue(RepetitionPenaltyKey, out var value) == true
            ? value switch
            {
                double d => d,
                float f => f,
                int i => i,
                string text when double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double parsed) => parsed,
                _ => throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{RepetitionPenaltyKey}\"] must be a number, got {value}.", nameof(options)),
            }
            : null;

    private GenerationOptions Merge(ChatOptions? options)
    {
        if (options is null) return _defaults with { StopSequences = [.. _defaults.StopSequences, HeaderStop] };
        return (_defaults with
        {
            MaxNewTokens = options.MaxOutputTokens ?? _defaults.MaxNewTokens,
            Temperature = options.Temperature ?? _defaults.Temperature,
            TopP = options.TopP ?? _defaults.TopP,
            TopK = options.TopK ?? _defaults.TopK,
            Seed = options.Seed is long seed ? unchecked((int)seed) : _defaults.Seed,
            RepetitionPenalty = RepetitionPenaltyOf(options) ?? _defaults.RepetitionPenalty,
            StopSequences = [.. _defaults.StopSequences, .. options.StopSequences ?? [], HeaderStop],
        }).Validate();
    }
}
