using System.Diagnostics;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// One Back-Scatter interaction (spec §2): draft, scatter to the peers, feedback sorted best first, revise, observers
/// score draft and revision, record. Optional extra passes repeat feedback and revision on the latest revision while the
/// observers' alignment score keeps improving (not in the reference).
/// </summary>
internal static class BackScatterProtocol
{
    /// <param name="centre">The agent answering.</param>
    /// <param name="question">Its question.</param>
    /// <param name="round">The round.</param>
    /// <param name="peers">The scattered-to peers, in the order they were drawn.</param>
    /// <param name="observers">The observers.</param>
    /// <param name="maxPasses">Maximum feedback-revision passes.</param>
    /// <param name="peerReady">Completes when a peer's memory is up to date for this round.</param>
    /// <param name="cancellationToken">Cancels the interaction.</param>
    public static async Task<InteractionRecord> RunAsync(IAgent centre, string question, int round, IReadOnlyList<IAgent> peers,
        IReadOnlyList<IObserverAgent> observers, int maxPasses, Func<IAgent, CancellationToken, Task> peerReady, CancellationToken cancellationToken)
    {
        using var activity = SandboxTelemetry.Source.StartActivity("sandbox.interaction");
        activity?.SetTag("sandbox.round", round);
        activity?.SetTag("sandbox.agent_id", centre.Id);

        var draftContext = new InteractionContext(round, centre.Id, 0);
        string draft = await centre.DraftAsync(question, draftContext, cancellationToken).ConfigureAwait(false);
        // Observers judge the draft while the peers do; neither sees the other's ratings.
        var draftScores = ScoreAllAsync(observers, question, draft, draftContext, cancellationToken);

        var firstContext = draftContext with { Pass = 1 };
        var feedback = await FeedbackAsync(peers, question, draft, firstContext, peerReady, cancellationToken).ConfigureAwait(false);
        string revision = await centre.ReviseAsync(question, draft, feedback, firstContext, cancellationToken).ConfigureAwait(false);
        var revisionScores = await ScoreAllAsync(observers, question, revision, firstContext, cancellationToken).ConfigureAwait(false);

        int passes = 1;
        // Every pass is kept for the realignment data, the last (non-improving) one too: each answer has its own rating.
        var history = new List<RevisionPass> { new(feedback, revision, revisionScores) };
        while (passes < maxPasses)
        {
            var context = draftContext with { Pass = passes + 1 };
            var more = await FeedbackAsync(peers, question, revision, context, peerReady, cancellationToken).ConfigureAwait(false);
            string next = await centre.ReviseAsync(question, revision, more, context, cancellationToken).ConfigureAwait(false);
            var nextScores = await ScoreAllAsync(observers, question, next, context, cancellationToken).ConfigureAwait(false);
            history.Add(new RevisionPass(more, next, nextScores));
            if (!(MeanAlignment(nextScores) > MeanAlignment(revisionScores))) break;
            (revision, revisionScores) = (next, nextScores);
            passes++;
        }

        return new InteractionRecord
        {
            AgentId = centre.Id,
            Label = centre.Persona,
            Round = round,
            Question = question,
            Draft = draft,
            Feedback = feedback,
            Revision = revision,
            DraftScores = await draftScores.ConfigureAwait(false),
            RevisionScores = revisionScores,
            Passes = passes,
            PassHistory = history.Count > 1 ? history : [],
        };
    }

    /// <summary>Asks every peer at once; returns the feedback best-rated first, failures last, ties in draw order.</summary>
    private static async Task<IReadOnlyList<PeerFeedback>> FeedbackAsync(IReadOnlyList<IAgent> peers, string question, string answer,
        InteractionContext context, Func<IAgent, CancellationToken, Task> peerReady, CancellationToken cancellationToken)
    {
        var tasks = peers.Select(async peer =>
        {
            await peerReady(peer, cancellationToken).ConfigureAwait(false);
            var rating = await peer.GiveFeedbackAsync(question, answer, context, cancellationToken).ConfigureAwait(false);
            return new PeerFeedback(peer.Id, rating);
        }).ToArray();
        var feedback = await Task.WhenAll(tasks).ConfigureAwait(false);
        return SortBestFirst(feedback);
    }

    internal static PeerFeedback[] SortBestFirst(IEnumerable<PeerFeedback> feedback) =>
        [.. feedback.OrderByDescending(f => f.Rating.Value ?? int.MinValue)];

    private static async Task<IReadOnlyList<ObserverScore>> ScoreAllAsync(IReadOnlyList<IObserverAgent> observers, string question,
        string answer, InteractionContext context, CancellationToken cancellationToken) =>
        await Task.WhenAll(observers.Select(o => o.ScoreAsync(question, answer, context, cancellationToken))).ConfigureAwait(false);

    private static double MeanAlignment(IReadOnlyList<ObserverScore> scores)
    {
        var values = scores.Where(s => s.Alignment.Succeeded).Select(s => (double)s.Alignment.Value!.Value).ToList();
        Debug.Assert(values.All(v => v is >= 1 and <= 7));
        return values.Count == 0 ? double.NaN : values.Average();
    }
}
