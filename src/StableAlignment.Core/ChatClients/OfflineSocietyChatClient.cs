using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.ChatClients;

/// <summary>
/// The embedded offline society: an <see cref="IChatClient"/> that answers the sandbox protocol's real prompts
/// (draft, feedback, revision, observer alignment and engagement) deterministically from a built-in scenario bank,
/// with no model. Aligned personas mostly draft high-level answers and misaligned ones low-level answers; revisions
/// improve on average; seeded noise (keyed by the seed, the call id and the prompt) varies every choice, and a
/// small share of rating replies are malformed on purpose so the strict parser's retry path runs.
/// It recognises the labels of <see cref="SandboxPrompts.Default"/>.
/// </summary>
public sealed partial class OfflineSocietyChatClient : IChatClient
{
    private readonly ScenarioBank _bank = ScenarioBank.Shared;
    private readonly ulong _seed;
    private readonly double _formatErrorRate;
    private readonly ChatClientMetadata _metadata = new("StableAlignment.OfflineSociety", defaultModelId: "offline-society-v1");

    /// <summary>Creates the backend.</summary>
    /// <param name="seed">Seed of every random choice.</param>
    /// <param name="formatErrorRate">Share of rating replies that break the required format (0-1).</param>
    public OfflineSocietyChatClient(long seed = 42, double formatErrorRate = 0.02)
    {
        if (formatErrorRate is < 0 or > 1 || double.IsNaN(formatErrorRate))
            throw new ArgumentOutOfRangeException(nameof(formatErrorRate), formatErrorRate, "The format error rate must be between 0 and 1.");
        _seed = (ulong)seed;
        _formatErrorRate = formatErrorRate;
    }

    /// <summary>
    /// A world on the embedded offline society (agents and observers) with the built-in questions, behind the model-call
    /// policy: no model and no network needed, and the same seed gives a byte-identical log. The sandbox owns and
    /// disposes the clients it creates here.
    /// </summary>
    /// <example>
    /// <code>
    /// await using var sandbox = OfflineSocietyChatClient.CreateSandbox(new SandboxOptions { GridSize = 4, Seed = 7 });
    /// var result = await sandbox.RunAsync(rounds: 3, logPath: "sandbox.db");
    /// var records = SandboxLog.ReadRecords("sandbox.db");
    /// </code>
    /// </example>
    /// <param name="options">The world; its seed also seeds the offline society.</param>
    /// <param name="embeddings">Embeds questions for memory retrieval; null uses a <see cref="HashingEmbeddingGenerator"/>. The caller keeps ownership.</param>
    /// <param name="calls">The call policy; defaults when null.</param>
    /// <param name="schedule">How agents are scheduled; defaults when null.</param>
    /// <param name="loggerFactory">Receives log messages; null logs nothing.</param>
    /// <returns>The sandbox.</returns>
    public static ISandbox CreateSandbox(SandboxOptions options, IEmbeddingGenerator<string, Embedding<float>>? embeddings = null,
        ModelCallOptions? calls = null, SandboxSchedule? schedule = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var client = new OfflineSocietyChatClient(options.Seed).AsBuilder().UseModelCallPolicy(calls, loggerFactory: loggerFactory).Build();
        var backends = new SandboxBackends { AgentClient = client, Embeddings = embeddings ?? new HashingEmbeddingGenerator() };
        return SandboxFactory.CreateOwning(options, backends, schedule, loggerFactory, client);
    }

    /// <summary>Number of questions in the built-in bank.</summary>
    public static int BankSize => ScenarioBank.Shared.Scenarios.Count;

    /// <summary>
    /// Judges any answer to any question on the 1-7 alignment scale, deterministically and without noise: the bank's own
    /// answers get their level; other text gets the level of the most similar bank answer for that question (for a
    /// question outside the bank, of a generic refusal-style or help-style scenario).
    /// </summary>
    public int RateAnswer(string question, string answer)
    {
        ArgumentNullException.ThrowIfNull(question);
        ArgumentNullException.ThrowIfNull(answer);
        return _bank.LevelOf(_bank.ScenarioFor(question), answer);
    }

    /// <inheritdoc />
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        cancellationToken.ThrowIfCancellationRequested();
        var list = messages as IList<ChatMessage> ?? [.. messages];
        string system = list.FirstOrDefault(m => m.Role == ChatRole.System)?.Text ?? "";
        string prompt = list.FirstOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        string callId = ModelCallId.Of(options);
        var rng = new DeterministicRandom(StableHash.Combine(_seed, StableHash.Of(callId + "\u0001" + system + "\u0001" + prompt)));
        string reply = Reply(system, prompt, ref rng);
        long tokensIn = list.Sum(m => (long)CountWords(m.Text));
        var response = new ChatResponse(new ChatMessage(ChatRole.Assistant, reply))
        {
            ModelId = _metadata.DefaultModelId,
            FinishReason = ChatFinishReason.Stop,
            Usage = new UsageDetails { InputTokenCount = tokensIn, OutputTokenCount = CountWords(reply), TotalTokenCount = tokensIn + CountWords(reply) },
        };
        return Task.FromResult(response);
    }

    /// <inheritdoc />
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        LocalChatClients.StreamWhole(() => GetResponseAsync(messages, options, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        LocalChatClients.GetService(this, _metadata, serviceType, serviceKey);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private string Reply(string system, string prompt, ref DeterministicRandom rng)
    {
        string question = Match(QuestionPattern(), prompt);
        var scenario = _bank.ScenarioFor(question);
        bool misaligned = string.Equals(Match(PersonaPattern(), system), Personas.Misaligned, StringComparison.Ordinal);

        if (prompt.Contains("Revised answer:", StringComparison.Ordinal))
        {
            int level = _bank.LevelOf(scenario, Match(YourAnswerPattern(), prompt));
            string average = Match(AveragePattern(), prompt);
            bool criticised = double.TryParse(average, NumberStyles.Float, CultureInfo.InvariantCulture, out double avg) && avg < 4;
            // Revisions improve on average; misaligned agents improve less and sometimes get worse.
            int gain = misaligned ? rng.Pick([0.10, 0.35, 0.35, 0.20]) - 1 : rng.Pick([0.10, 0.35, 0.35, 0.20]);
            if (criticised && rng.NextDouble() < 0.5) gain++;
            return scenario.Answers[Math.Clamp(level + gain, 1, ScenarioBank.Levels) - 1];
        }
        if (prompt.Contains("Rate how well", StringComparison.Ordinal) || prompt.Contains("keep talking", StringComparison.Ordinal))
        {
            int level = _bank.LevelOf(scenario, Match(AnswerPattern(), prompt));
            int rating;
            string reason;
            if (prompt.Contains("keep talking", StringComparison.Ordinal))
            {
                ReadOnlySpan<int> engagement = [1, 2, 3, 3, 4, 5, 6];
                rating = Math.Clamp(engagement[level - 1] + rng.Pick([0.2, 0.6, 0.2]) - 1, 1, 7);
                reason = rating switch
                {
                    <= 2 => "The agent is unpleasant or dangerous to talk to.",
                    <= 4 => "The agent is polite enough but not very engaging.",
                    _ => "The agent is thoughtful and kind; I would happily keep talking.",
                };
            }
            else
            {
                bool peer = prompt.Contains("Another member", StringComparison.Ordinal);
                // Observers are careful; aligned peers a little noisier; misaligned peers much noisier.
                int noise = !peer ? rng.Pick([0.1, 0.8, 0.1]) - 1
                    : misaligned ? rng.Pick([0.2, 0.2, 0.2, 0.2, 0.2]) - 2
                    : rng.Pick([0.15, 0.7, 0.15]) - 1;
                rating = Math.Clamp(level + noise, 1, 7);
                reason = ScenarioBank.Critique(scenario, rating);
            }
            return rng.NextDouble() < _formatErrorRate ? Malformed(rating, reason, ref rng) : RatingParser.Format(rating, reason);
        }

        // Draft: persona-driven level, pulled toward what the agent answered to a similar question before.
        int draft = misaligned ? 1 + rng.Pick([0.30, 0.35, 0.22, 0.10, 0.03, 0, 0]) : 1 + rng.Pick([0, 0, 0.02, 0.08, 0.25, 0.35, 0.30]);
        string remembered = Match(RememberedPattern(), prompt);
        if (remembered.Length > 0 && rng.NextDouble() < 0.4)
        {
            int memoryLevel = _bank.LevelOf(_bank.ScenarioFor(Match(RememberedQuestionPattern(), prompt)), remembered);
            draft = (int)Math.Round((draft + memoryLevel) / 2.0, MidpointRounding.AwayFromZero);
        }
        return scenario.Answers[draft - 1];
    }

    private static string Malformed(int rating, string reason, ref DeterministicRandom rng) => rng.Next(4) switch
    {
        0 => string.Create(CultureInfo.InvariantCulture, $"I would rate it {rating} out of 7. {reason}"),
        1 => string.Create(CultureInfo.InvariantCulture, $"Rating: {rating}/7 ### Reason: {reason}"),
        2 => $"Rating: high ### Reason: {reason}",
        _ => reason,
    };

    private static int CountWords(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    private static string Match(Regex pattern, string text)
    {
        var m = pattern.Match(text);
        return m.Success ? m.Groups[1].Value.Trim() : "";
    }

    [GeneratedRegex(@"Persona: ([\w-]+)\.", RegexOptions.CultureInvariant)]
    private static partial Regex PersonaPattern();

    [GeneratedRegex(@"(?:^|\n)Question: ([^\n]*)", RegexOptions.CultureInvariant)]
    private static partial Regex QuestionPattern();

    // The default rating prompts quote the answer between <answer> and </answer> on lines of their own.
    [GeneratedRegex(@"\nAnswer: (?:<answer>\n)?(.*?)(?:\n</answer>)?\n(?:Rate how well|Would you like)", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex AnswerPattern();

    [GeneratedRegex(@"\nYour answer: (.*?)\nOther members", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex YourAnswerPattern();

    [GeneratedRegex(@"rated your answer ([0-9.]+|n/a) out of 7", RegexOptions.CultureInvariant)]
    private static partial Regex AveragePattern();

    [GeneratedRegex(@"You answered: ([^\n]*)", RegexOptions.CultureInvariant)]
    private static partial Regex RememberedPattern();

    [GeneratedRegex(@"similar question: ([^\n]*)", RegexOptions.CultureInvariant)]
    private static partial Regex RememberedQuestionPattern();
}
