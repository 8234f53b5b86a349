using System.Globalization;
using System.Text;

namespace StableAlignment.Core.Sandbox;

/// <summary>How personas are laid out over the grid (spec §1; the reference's world initialisations).</summary>
public enum PersonaLayout
{
    /// <summary>Every cell holds an aligned agent (reference: <c>all_good</c>).</summary>
    AllAligned,

    /// <summary>Every cell holds a misaligned agent (reference: <c>all_bad</c>).</summary>
    AllMisaligned,

    /// <summary>The top half of the rows (row-major first half of the cells) is aligned, the rest misaligned (reference: <c>half_half</c>).</summary>
    HalfAndHalf,

    /// <summary>A seeded random half of the cells is aligned, the rest misaligned (reference: <c>mixed_half_half</c>).</summary>
    RandomHalfAndHalf,

    /// <summary>Personas come from <see cref="SandboxOptions.CustomLayout"/>; <see langword="null"/> entries are empty cells.</summary>
    Custom,
}

/// <summary>The built-in persona labels.</summary>
public static class Personas
{
    /// <summary>An agent that tries to be harmless, unbiased, honest and helpful.</summary>
    public const string Aligned = "aligned";

    /// <summary>An agent that answers without regard for others.</summary>
    public const string Misaligned = "misaligned";
}

/// <summary>
/// The world and its protocol: everything that decides what the log contains, so every option is in the log's
/// fingerprint and a log refuses to be resumed by a world with other options. How calls are made (concurrency,
/// retries, timeouts, budget) is the model-call pipeline's (<see cref="ModelCalls.ModelCallOptions"/>), and how agents
/// are scheduled is <see cref="SandboxSchedule"/>'s; neither changes the log. Every value has the reference's default
/// where the reference has one. Call <see cref="Validate"/> (the sandbox does) to get an <see cref="ArgumentException"/>
/// naming a bad option.
/// </summary>
public sealed record SandboxOptions
{
    /// <summary>Side N of the N x N grid; agent id = row * N + col. Reference: 10.</summary>
    public int GridSize { get; init; } = 10;

    /// <summary>How personas are placed on the grid.</summary>
    public PersonaLayout Layout { get; init; } = PersonaLayout.RandomHalfAndHalf;

    /// <summary>For <see cref="PersonaLayout.Custom"/>: N*N persona labels in row-major order, <see langword="null"/> for an empty cell.</summary>
    public IReadOnlyList<string?>? CustomLayout { get; init; }

    /// <summary>Descriptions of each persona label, inserted into the system prompt.</summary>
    public IReadOnlyDictionary<string, string> PersonaDescriptions { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Personas.Aligned] = "You care about other people and try to be harmless, unbiased, honest and helpful.",
        [Personas.Misaligned] = "You say whatever you are asked to say and do not care whether it hurts anyone.",
    };

    /// <summary>Euclidean grid distance within which agents are neighbours; <see langword="null"/> means N / 2 (the reference).</summary>
    public double? NeighbourhoodRadius { get; init; }

    /// <summary>Share (0-1) of the chosen local peers replaced by random agents from anywhere (the "global" variant); 0 = purely local.</summary>
    public double GlobalMixShare { get; init; }

    /// <summary>Peers k asked for feedback in each interaction (reference: 4 threaded, 16 single-threaded).</summary>
    public int PeersPerInteraction { get; init; } = 4;

    /// <summary>Observer agents that score drafts and revisions but never take part.</summary>
    public int ObserverCount { get; init; } = 1;

    /// <summary>Maximum feedback-revision passes; 1 is the reference. More passes stop as soon as the observers' alignment score stops improving.</summary>
    public int MaxFeedbackPasses { get; init; } = 1;

    /// <summary>Question-answer pairs seeded into each agent's memory from its persona's set (spec: about 50).</summary>
    public int MemorySeedSize { get; init; } = 50;

    /// <summary>A memory is used only when its cosine distance (1 - cosine similarity) to the new question is below this. Reference: 0.3.</summary>
    public double MemoryDistanceThreshold { get; init; } = 0.3;

    /// <summary>How many memories (nearest first) may go into a prompt. Reference: 1.</summary>
    public int MemoryTopK { get; init; } = 1;

    /// <summary>Model calls allowed for one rating before it is recorded as an explicit failure.</summary>
    public int RatingAttempts { get; init; } = 3;

    /// <summary>Seed of every random choice (layout, peers, offline answers). Same seed and options give the same log.</summary>
    public long Seed { get; init; } = 42;







    /// <summary>Sampling temperature. Reference: 1.0.</summary>
    public float Temperature { get; init; } = 1.0f;

    /// <summary>Maximum new tokens per call. Reference: 256.</summary>
    public int MaxOutputTokens { get; init; } = 256;


    /// <summary>The prompt templates.</summary>
    public SandboxPrompts Prompts { get; init; } = SandboxPrompts.Default;

    /// <summary>The effective neighbourhood radius.</summary>
    public double EffectiveRadius => NeighbourhoodRadius ?? GridSize / 2.0;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        static void Check(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"SandboxOptions.{name}: {message}", name);
        }

        Check(GridSize is >= 1 and <= 1000, nameof(GridSize), $"must be between 1 and 1000, got {GridSize}.");
        Check(Enum.IsDefined(Layout), nameof(Layout), $"unknown layout {Layout}.");
        if (Layout == PersonaLayout.Custom)
        {
            Check(CustomLayout is not null, nameof(CustomLayout), "is required when Layout is Custom.");
            Check(CustomLayout!.Count == GridSize * GridSize, nameof(CustomLayout),
                $"must hold GridSize*GridSize = {GridSize * GridSize} entries (row-major), got {CustomLayout.Count}.");
            for (int i = 0; i < CustomLayout.Count; i++)
            {
                string? label = CustomLayout[i];
                Check(label is null || PersonaDescriptions.ContainsKey(label), nameof(CustomLayout),
                    $"entry {i} has persona '{label}', which has no entry in PersonaDescriptions.");
            }
        }
        Check(PersonaDescriptions.ContainsKey(Personas.Aligned) && PersonaDescriptions.ContainsKey(Personas.Misaligned),
            nameof(PersonaDescriptions), $"must describe '{Personas.Aligned}' and '{Personas.Misaligned}'.");
        Check(NeighbourhoodRadius is null || (NeighbourhoodRadius > 0 && double.IsFinite(NeighbourhoodRadius.Value)),
            nameof(NeighbourhoodRadius), $"must be positive and finite, got {NeighbourhoodRadius}.");
        Check(GlobalMixShare is >= 0 and <= 1, nameof(GlobalMixShare), $"must be between 0 and 1, got {GlobalMixShare}.");
        Check(PeersPerInteraction >= 1, nameof(PeersPerInteraction), $"must be at least 1, got {PeersPerInteraction}.");
        Check(ObserverCount >= 1, nameof(ObserverCount), $"must be at least 1, got {ObserverCount}.");
        Check(MaxFeedbackPasses >= 1, nameof(MaxFeedbackPasses), $"must be at least 1, got {MaxFeedbackPasses}.");
        Check(MemorySeedSize >= 0, nameof(MemorySeedSize), $"must not be negative, got {MemorySeedSize}.");
        Check(MemoryDistanceThreshold is > 0 and <= 2, nameof(MemoryDistanceThreshold), $"must be in (0, 2], got {MemoryDistanceThreshold}.");
        Check(MemoryTopK >= 0, nameof(MemoryTopK), $"must not be negative, got {MemoryTopK}.");
        Check(RatingAttempts >= 1, nameof(RatingAttempts), $"must be at least 1, got {RatingAttempts}.");
        Check(Temperature is >= 0 and <= 2, nameof(Temperature), $"must be between 0 and 2, got {Temperature}.");
        Check(MaxOutputTokens >= 1, nameof(MaxOutputTokens), $"must be at least 1, got {MaxOutputTokens}.");
        Check(Prompts is not null, nameof(Prompts), "must not be null.");
        Prompts!.Validate();
    }

    /// <summary>A canonical text of every option. A log remembers it, and resuming with different options is refused.</summary>
    internal string Fingerprint(IReadOnlyList<string> questions)
    {
        var sb = new StringBuilder();
        void Add(string name, object? value) =>
            sb.Append(name).Append('=').Append(Convert.ToString(value, CultureInfo.InvariantCulture)).Append('\n');
        Add(nameof(GridSize), GridSize);
        Add(nameof(Layout), Layout);
        Add(nameof(CustomLayout), CustomLayout is null ? "" : string.Join(",", CustomLayout.Select(l => l ?? "-")));
        foreach (var kv in PersonaDescriptions.OrderBy(k => k.Key, StringComparer.Ordinal)) Add("Persona." + kv.Key, kv.Value);
        Add(nameof(EffectiveRadius), EffectiveRadius.ToString("R", CultureInfo.InvariantCulture));
        Add(nameof(GlobalMixShare), GlobalMixShare.ToString("R", CultureInfo.InvariantCulture));
        Add(nameof(PeersPerInteraction), PeersPerInteraction);
        Add(nameof(ObserverCount), ObserverCount);
        Add(nameof(MaxFeedbackPasses), MaxFeedbackPasses);
        Add(nameof(MemorySeedSize), MemorySeedSize);
        Add(nameof(MemoryDistanceThreshold), MemoryDistanceThreshold.ToString("R", CultureInfo.InvariantCulture));
        Add(nameof(MemoryTopK), MemoryTopK);
        Add(nameof(RatingAttempts), RatingAttempts);
        Add(nameof(Seed), Seed);
        Add(nameof(Temperature), Temperature.ToString("R", CultureInfo.InvariantCulture));
        Add(nameof(MaxOutputTokens), MaxOutputTokens);
        Add(nameof(Prompts), Prompts.Fingerprint());
        Add("Questions", StableHash.Sha256Hex(string.Join("\n", questions)));
        return sb.ToString();
    }
}

/// <summary>
/// How a sandbox schedules its agents. None of it changes the log, so it may differ between a run and its resumption.
/// </summary>
public sealed record SandboxSchedule
{
    /// <summary>How many rounds an agent may run ahead of the durably logged rounds (pipelining across rounds). Default 2.</summary>
    public int MaxRoundsAhead { get; init; } = 2;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid option.</summary>
    /// <returns>This instance, for chaining.</returns>
    public SandboxSchedule Validate()
    {
        if (MaxRoundsAhead < 0)
            throw new ArgumentException($"SandboxSchedule.MaxRoundsAhead: must not be negative, got {MaxRoundsAhead}.", nameof(MaxRoundsAhead));
        return this;
    }
}
