namespace StableAlignment.Core.Sandbox;

/// <summary>
/// The outcome of asking an agent for a 1-7 rating: either a parsed value or an explicit failure.
/// </summary>
/// <remarks>
/// The Python reference stores an unparsable rating as the magic value 8 (or -1 for observers), which then
/// leaks into training data. Here a failure is a state of its own: <see cref="Value"/> is <see langword="null"/>
/// and <see cref="FailureReason"/> says why.
/// </remarks>
public sealed record RatingOutcome
{
    /// <summary>The parsed rating, or <see langword="null"/> when every attempt failed.</summary>
    public int? Value { get; init; }

    /// <summary>The reason text that came with the rating (empty when none).</summary>
    public string Reason { get; init; } = "";

    /// <summary>Why parsing failed on the last attempt; <see langword="null"/> on success.</summary>
    public string? FailureReason { get; init; }

    /// <summary>How many model calls were made to obtain this rating (1 when the first reply parsed).</summary>
    public int Attempts { get; init; } = 1;

    /// <summary>The raw reply of the last attempt, kept for auditing.</summary>
    public string RawReply { get; init; } = "";

    /// <summary>Whether a rating was obtained.</summary>
    public bool Succeeded => Value.HasValue;

    /// <summary>Creates a successful outcome.</summary>
    public static RatingOutcome Success(int value, string reason, string rawReply = "", int attempts = 1) =>
        new() { Value = value, Reason = reason, RawReply = rawReply, Attempts = attempts };

    /// <summary>Creates a failed outcome.</summary>
    public static RatingOutcome Failure(string failureReason, string rawReply = "", int attempts = 1) =>
        new() { FailureReason = failureReason, RawReply = rawReply, Attempts = attempts };
}

/// <summary>One peer's feedback on the centre agent's draft: a rating from 1 to 7 and a reason.</summary>
/// <param name="PeerId">The id of the peer agent that gave the feedback.</param>
/// <param name="Rating">The peer's rating of the draft, with its reason.</param>
public sealed record PeerFeedback(int PeerId, RatingOutcome Rating);

/// <summary>An observer's scores of one answer: alignment and engagement, each 1 to 7.</summary>
/// <param name="ObserverId">The id of the observer agent.</param>
/// <param name="Alignment">How well the answer is aligned with shared social values.</param>
/// <param name="Engagement">Whether the observer would like to keep talking to this agent.</param>
public sealed record ObserverScore(int ObserverId, RatingOutcome Alignment, RatingOutcome Engagement);

/// <summary>One feedback-revision pass: the peers' feedback on the answer before it, the revision it led to, and the observers' scores of that revision.</summary>
/// <param name="Feedback">The peers' feedback, sorted best-rated first as shown to the agent.</param>
/// <param name="Revision">The centre agent's answer after seeing the feedback.</param>
/// <param name="Scores">The observers' scores of <paramref name="Revision"/>.</param>
public sealed record RevisionPass(IReadOnlyList<PeerFeedback> Feedback, string Revision, IReadOnlyList<ObserverScore> Scores)
{
    /// <summary>Mean observer alignment score of the revision over successful ratings, or <see langword="null"/> when none succeeded.</summary>
    public double? Alignment => InteractionRecord.MeanAlignment(Scores);
}

/// <summary>
/// One Back-Scatter interaction, as recorded by the sandbox and consumed by the alignment dataset builder.
/// Field for field it covers the reference sandbox's per-agent record (spec §2, step 6).
/// </summary>
public sealed record InteractionRecord
{
    /// <summary>The centre agent's id (row * N + col).</summary>
    public required int AgentId { get; init; }

    /// <summary>The centre agent's persona label (for example "aligned" or "misaligned").</summary>
    public required string Label { get; init; }

    /// <summary>The round in which the interaction took place, from 0.</summary>
    public required int Round { get; init; }

    /// <summary>The question the centre agent answered.</summary>
    public required string Question { get; init; }

    /// <summary>The centre agent's first answer.</summary>
    public required string Draft { get; init; }

    /// <summary>The peers' feedback on the draft, sorted best-rated first as shown to the agent.</summary>
    public required IReadOnlyList<PeerFeedback> Feedback { get; init; }

    /// <summary>The centre agent's answer after seeing the feedback.</summary>
    public required string Revision { get; init; }

    /// <summary>The observers' scores of the draft.</summary>
    public required IReadOnlyList<ObserverScore> DraftScores { get; init; }

    /// <summary>The observers' scores of the revision.</summary>
    public required IReadOnlyList<ObserverScore> RevisionScores { get; init; }

    /// <summary>How many feedback-revision passes were kept, each improving on the one before (1 in the reference protocol).</summary>
    public int Passes { get; init; } = 1;

    /// <summary>The model that wrote the draft, the revision and the peers' feedback (the agents' client's model id), when the client names it.</summary>
    public string? Model { get; init; }

    /// <summary>The model of the observers that scored the draft and the revision, when the client names it.</summary>
    public string? ObserverModel { get; init; }

    /// <summary>
    /// Every feedback-revision pass in order, the first included, when more than one was run
    /// (<see cref="SandboxOptions.MaxFeedbackPasses"/> above 1); the last may be a revision that did not improve and so
    /// is not <see cref="Revision"/>. Empty when only one pass ran: that pass is <see cref="Feedback"/>,
    /// <see cref="Revision"/> and <see cref="RevisionScores"/>.
    /// </summary>
    public IReadOnlyList<RevisionPass> PassHistory { get; init; } = [];

    /// <summary>Every pass that was run: <see cref="PassHistory"/>, or the single pass of the reference protocol.</summary>
    internal IReadOnlyList<RevisionPass> AllPasses => PassHistory.Count > 0 ? PassHistory : [new RevisionPass(Feedback, Revision, RevisionScores)];

    /// <summary>Mean observer alignment score of the draft over successful ratings, or <see langword="null"/> when none succeeded.</summary>
    public double? DraftAlignment => MeanAlignment(DraftScores);

    /// <summary>Mean observer alignment score of the revision over successful ratings, or <see langword="null"/> when none succeeded.</summary>
    public double? RevisionAlignment => MeanAlignment(RevisionScores);

    /// <summary>
    /// Every rating this interaction asked for, with its kind, rater and pass (0 for the draft's scores): the draft's
    /// observer scores, then each pass's feedback and scores, the last (not kept) pass too.
    /// </summary>
    internal IEnumerable<(string Kind, int Rater, int Pass, RatingOutcome Rating)> Ratings()
    {
        foreach (var s in DraftScores)
        {
            yield return ("observer-alignment", s.ObserverId, 0, s.Alignment);
            yield return ("observer-engagement", s.ObserverId, 0, s.Engagement);
        }
        var passes = AllPasses;
        for (int p = 0; p < passes.Count; p++)
        {
            foreach (var f in passes[p].Feedback) yield return ("feedback", f.PeerId, p + 1, f.Rating);
            foreach (var s in passes[p].Scores)
            {
                yield return ("observer-alignment", s.ObserverId, p + 1, s.Alignment);
                yield return ("observer-engagement", s.ObserverId, p + 1, s.Engagement);
            }
        }
    }

    /// <summary>Ratings of this interaction recorded as failures (peers' and observers'), of the draft and every pass that ran.</summary>
    internal long FailedRatings() => Ratings().Count(r => !r.Rating.Succeeded);

    internal static double? MeanAlignment(IReadOnlyList<ObserverScore> scores)
    {
        double sum = 0;
        int n = 0;
        foreach (var s in scores)
        {
            if (s.Alignment.Value is int v)
            {
                sum += v;
                n++;
            }
        }
        return n == 0 ? null : sum / n;
    }
}
