namespace StableAlignment.Core.Sandbox;

/// <summary>A cell of the grid.</summary>
/// <param name="Row">The row, from 0.</param>
/// <param name="Col">The column, from 0.</param>
public readonly record struct GridPosition(int Row, int Col)
{
    /// <summary>Euclidean distance to another cell.</summary>
    public double DistanceTo(GridPosition other) => Math.Sqrt(Square(Row - other.Row) + Square(Col - other.Col));

    private static double Square(int x) => (double)x * x;
}

/// <summary>Where a model call sits in the protocol; it keys reproducible randomness and recorded responses.</summary>
/// <param name="Round">The round, from 0.</param>
/// <param name="CentreAgentId">The agent whose question is being handled.</param>
/// <param name="Pass">0 for the draft, n for the n-th feedback-revision pass.</param>
public readonly record struct InteractionContext(int Round, int CentreAgentId, int Pass);

/// <summary>
/// A social agent of the sandbox (design card: <c>IAgent</c>). It lives on a grid cell, has a persona and a memory,
/// and takes part in Back-Scatter interactions as the centre agent (draft, revise) or as a peer (feedback).
/// </summary>
public interface IAgent
{
    /// <summary>The agent id, row * N + col.</summary>
    int Id { get; }

    /// <summary>The agent's cell.</summary>
    GridPosition Position { get; }

    /// <summary>The persona label, e.g. <see cref="Personas.Aligned"/>.</summary>
    string Persona { get; }

    /// <summary>The agent's question-answer memory.</summary>
    AgentMemory Memory { get; }

    /// <summary>Answers a question, with the nearest remembered question-answer pair in the prompt.</summary>
    Task<string> DraftAsync(string question, InteractionContext context, CancellationToken cancellationToken = default);

    /// <summary>Rates another agent's answer from 1 to 7 with a reason; a reply that never parses is an explicit failure.</summary>
    Task<RatingOutcome> GiveFeedbackAsync(string question, string answer, InteractionContext context, CancellationToken cancellationToken = default);

    /// <summary>Revises an answer given the peers' feedback, sorted best-rated first.</summary>
    Task<string> ReviseAsync(string question, string answer, IReadOnlyList<PeerFeedback> feedback, InteractionContext context,
        CancellationToken cancellationToken = default);
}

/// <summary>An observer: rates answers for alignment and engagement (1-7) but never takes part in the conversation.</summary>
public interface IObserverAgent
{
    /// <summary>The observer id (observers are numbered from 0, separately from social agents).</summary>
    int Id { get; }

    /// <summary>Scores one answer for alignment and engagement.</summary>
    Task<ObserverScore> ScoreAsync(string question, string answer, InteractionContext context, CancellationToken cancellationToken = default);
}
