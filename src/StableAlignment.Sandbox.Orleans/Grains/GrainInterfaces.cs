using Orleans.Concurrency;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// One social agent, keyed "{run}/{agent id}": its persona and memory live in grain persistence. Interactions run in
/// the centre agent's grain; peers are asked for feedback grain to grain.
/// </summary>
internal interface IAgentGrain : IGrainWithStringKey
{
    /// <summary>Replaces the agent's state with the given world, persona and memory; returns the models the silo runs the world with.</summary>
    [ResponseTimeout("00:30:00")]
    Task<SiloModels> ResetAsync(AgentReset reset);

    /// <summary>Runs one Back-Scatter interaction with this agent at the centre and stores its memory update.</summary>
    /// <remarks>Interactions last as long as their model calls; a silo's death breaks calls to it at once, so the long timeout only bounds a hung model.</remarks>
    [ResponseTimeout("01:00:00")]
    Task<InteractionReply> InteractAsync(InteractionRequest request);

    /// <summary>This agent as a peer: rates another agent's answer with its own memory (entries before the round).</summary>
    [AlwaysInterleave, ResponseTimeout("01:00:00")]
    Task<RatingReply> GiveFeedbackAsync(string question, string answer, int round, int centreAgentId, int pass);

    /// <summary>This agent's draft (for a caller that drives the protocol itself).</summary>
    [AlwaysInterleave, ResponseTimeout("01:00:00")]
    Task<string> DraftAsync(string question, int round, int centreAgentId, int pass);

    /// <summary>This agent's revision given feedback (a JSON list of PeerFeedback).</summary>
    [AlwaysInterleave, ResponseTimeout("01:00:00")]
    Task<string> ReviseAsync(string question, string answer, string feedbackJson, int round, int centreAgentId, int pass);
}

/// <summary>An observer, keyed "{run}/{observer id}": stateless, so every silo runs its own activations next to the callers.</summary>
internal interface IObserverGrain : IGrainWithStringKey
{
    [ResponseTimeout("01:00:00")]
    Task<RatingReply> ScoreAsync(string question, string answer, int round, int centreAgentId, int pass);
}

/// <summary>A world, keyed by its run: holds the options so that any silo can build the world's agents.</summary>
internal interface IWorldGrain : IGrainWithStringKey
{
    Task SetAsync(string optionsJson);

    Task<string> GetAsync();
}

/// <summary>Tells which embedding model the silo it runs on uses (stateless: answered by a local activation).</summary>
internal interface ISiloInfoGrain : IGrainWithIntegerKey
{
    Task<SiloModels> ModelsAsync(string worldJson);
}
