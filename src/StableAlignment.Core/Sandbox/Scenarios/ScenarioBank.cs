using System.Text.RegularExpressions;

namespace StableAlignment.Core.Sandbox;

/// <summary>One question of the bank with its answers at quality levels 1 (harmful or rude) to 7 (aligned and helpful).</summary>
/// <param name="Kind">The kind of social situation.</param>
/// <param name="Question">The question.</param>
/// <param name="Answers">Answers by level: <c>Answers[level - 1]</c>.</param>
/// <param name="Concern">What is wrong with a low-level answer of this kind (used in critiques).</param>
internal sealed record Scenario(string Kind, string Question, IReadOnlyList<string> Answers, string Concern);

/// <summary>The template lists of one kind of situation and its topics (fields separated by '|').</summary>
internal sealed record KindSpec(string Name, string[] Fields, string Concern, string[] Questions, string[] Answers, string[] Topics);

/// <summary>
/// The bank's written content, read from the embedded <c>scenario-bank.json</c>: per kind of situation, the question
/// templates, the answer templates by level 1..7 (aligned levels share fixed wording, such as "I'm sorry, but I can't
/// help you ..." and "Instead, you could ...", so a small model can learn what is preferred) and the topics; and the
/// critiques by rating.
/// </summary>
internal sealed record BankContent(string[] Critiques, KindSpec[] Kinds)
{
    public const string ResourceName = "StableAlignment.Core.Sandbox.scenario-bank.json";

    private static readonly System.Text.Json.JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true };

    public static BankContent Load()
    {
        using var stream = typeof(BankContent).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource '{ResourceName}' is missing from the build.");
        var content = System.Text.Json.JsonSerializer.Deserialize<BankContent>(stream, Json)
            ?? throw new InvalidDataException($"'{ResourceName}' is empty.");
        if (content.Critiques.Length != ScenarioBank.Levels || content.Kinds.Any(k => k.Answers.Length != ScenarioBank.Levels))
            throw new InvalidDataException($"'{ResourceName}' must hold {ScenarioBank.Levels} critiques and {ScenarioBank.Levels} answers per kind.");
        return content;
    }
}

/// <summary>
/// The offline society's scenario bank: questions over eight kinds of social situation (harm, deception, privacy,
/// bias, self-harm, law, everyday ethics, plain helpfulness), each with answers across the 1-7 scale and critiques.
/// Generated from templates x topics, so it is compact to maintain and its wording is consistent per level.
/// </summary>
internal sealed partial class ScenarioBank
{
    public const int Levels = 7;

    private readonly Dictionary<string, Scenario> _byQuestion = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _levelByAnswer = new(StringComparer.Ordinal);

    private static readonly Lazy<ScenarioBank> SharedBank = new(() => new ScenarioBank());

    // The written content (templates x topics, critiques) is data, not code: an embedded JSON resource.
    private static readonly Lazy<BankContent> Content = new(BankContent.Load);

    private static KindSpec[] Kinds => Content.Value.Kinds;

    private static string[] Critiques => Content.Value.Critiques;

    public static ScenarioBank Shared => SharedBank.Value;

    public ScenarioBank()
    {
        var scenarios = new List<(int Topic, int Template, int Kind, Scenario Scenario)>();
        for (int k = 0; k < Kinds.Length; k++)
        {
            var spec = Kinds[k];
            for (int t = 0; t < spec.Topics.Length; t++)
            {
                string[] parts = spec.Topics[t].Split('|');
                if (parts.Length != spec.Fields.Length)
                    throw new InvalidOperationException($"Scenario bank: topic {t} of kind '{spec.Name}' has {parts.Length} fields, expected {spec.Fields.Length}.");
                var questionValues = Values(spec.Fields, parts, secondPerson: false);
                var answerValues = Values(spec.Fields, parts, secondPerson: true);
                string[] answers = [.. spec.Answers.Select(a => SandboxPrompts.Render(a, answerValues))];
                for (int q = 0; q < spec.Questions.Length; q++)
                {
                    string question = SandboxPrompts.Render(spec.Questions[q], questionValues);
                    scenarios.Add((t, q, k, new Scenario(spec.Name, question, answers, spec.Concern)));
                }
            }
        }
        Scenarios = [.. scenarios.Select(s => s.Scenario)];
        foreach (var s in Scenarios)
        {
            _byQuestion.Add(s.Question, s);
            for (int level = 1; level <= Levels; level++) _levelByAnswer.TryAdd(s.Answers[level - 1], level);
        }
        // Consecutive questions cycle through the kinds, so every round sees every kind of situation.
        ScheduleQuestions = [.. scenarios.OrderBy(s => s.Topic).ThenBy(s => s.Template).ThenBy(s => s.Kind).Select(s => s.Scenario.Question)];
        MemorySeeds = new Dictionary<string, IReadOnlyList<QuestionAnswer>>(StringComparer.Ordinal)
        {
            [Personas.Aligned] = [.. Scenarios.Select(s => new QuestionAnswer(s.Question, s.Answers[Levels - 1 - (int)(StableHash.Of(s.Question) % 2)]))],
            [Personas.Misaligned] = [.. Scenarios.Select(s => new QuestionAnswer(s.Question, s.Answers[(int)(StableHash.Of(s.Question) % 2)]))],
        };
    }

    public IReadOnlyList<Scenario> Scenarios { get; }

    public IReadOnlyList<string> ScheduleQuestions { get; }

    public IReadOnlyDictionary<string, IReadOnlyList<QuestionAnswer>> MemorySeeds { get; }

    public static IEnumerable<string> KindNames => Kinds.Select(k => k.Name);

    /// <summary>The scenario of a bank question, or a generic one built for any other question.</summary>
    public Scenario ScenarioFor(string question) =>
        _byQuestion.TryGetValue(question.Trim(), out var s) ? s : Generic(question.Trim());

    /// <summary>The level of <paramref name="answer"/>: exact for the bank's own answers, otherwise the level of the
    /// most similar answer (word overlap) to the question's scenario; ties go to the lower level.</summary>
    public int LevelOf(Scenario scenario, string answer)
    {
        string text = answer.Trim();
        if (text.Length == 0) return 1;
        for (int level = 1; level <= Levels; level++)
        {
            if (string.Equals(scenario.Answers[level - 1], text, StringComparison.Ordinal)) return level;
        }
        if (_levelByAnswer.TryGetValue(text, out int known)) return known;
        var words = Words(text);
        int best = 1;
        double bestScore = -1;
        for (int level = 1; level <= Levels; level++)
        {
            var reference = Words(scenario.Answers[level - 1]);
            int common = words.Count(reference.Contains);
            double score = common / (double)(words.Count + reference.Count - common);
            if (score > bestScore + 1e-12)
            {
                bestScore = score;
                best = level;
            }
        }
        return best;
    }

    /// <summary>A rater's reason for giving <paramref name="rating"/> to an answer of this scenario.</summary>
    public static string Critique(Scenario scenario, int rating) =>
        SandboxPrompts.Render(Critiques[Math.Clamp(rating, 1, Levels) - 1], new Dictionary<string, string> { ["concern"] = scenario.Concern });

    private static HashSet<string> Words(string text) =>
        [.. WordPattern().Matches(text.ToLowerInvariant()).Select(m => m.Value)];

    [GeneratedRegex(@"[a-z0-9']+", RegexOptions.CultureInvariant)]
    private static partial Regex WordPattern();

    private static readonly string[] RiskWords =
    [
        "kill", "hurt", "steal", "weapon", "bomb", "poison", "drug", "hack", "lie", "cheat", "fake", "illegal", "spy", "stalk",
        "attack", "revenge", "rob", "fraud", "racist", "suicide", "die", "cut myself", "without getting caught", "secretly",
    ];

    /// <summary>A scenario for a question outside the bank: a risky request gets refusal-style answers, anything else help-style ones.</summary>
    private static Scenario Generic(string question)
    {
        string lower = question.ToLowerInvariant();
        bool risky = RiskWords.Any(w => lower.Contains(w, StringComparison.Ordinal));
        var spec = risky ? Kinds[0] : Kinds[^1];
        string[] parts = risky
            ? ["do that", "go ahead and try it when nobody is watching", "it could hurt you or other people", "have a real problem",
                "talk to someone you trust about a safer way"]
            : ["do that", "break the task into small steps and follow a reliable guide", "-", "-", "ask someone with experience to check your work"];
        var values = Values(spec.Fields, parts, secondPerson: true);
        return new Scenario(spec.Name, question, [.. spec.Answers.Select(a => SandboxPrompts.Render(a, values))], spec.Concern);
    }

    private static Dictionary<string, string> Values(string[] fields, string[] parts, bool secondPerson)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < fields.Length; i++)
        {
            string v = secondPerson ? SecondPerson(parts[i]) : parts[i];
            values[fields[i]] = v;
            values[char.ToUpperInvariant(fields[i][0]) + fields[i][1..]] = v.Length == 0 ? v : char.ToUpperInvariant(v[0]) + v[1..];
        }
        return values;
    }

    /// <summary>Turns the asker's first person into the answerer's second person ("my son" -> "your son").</summary>
    private static string SecondPerson(string text) => FirstPersonPattern().Replace(text, m => m.Value switch
    {
        "I" => "you",
        "I'm" => "you're",
        "me" => "you",
        "my" => "your",
        "myself" => "yourself",
        "mine" => "yours",
        _ => m.Value,
    });

    [GeneratedRegex(@"\b(I'm|I|me|my|myself|mine)\b", RegexOptions.CultureInvariant)]
    private static partial Regex FirstPersonPattern();
}
