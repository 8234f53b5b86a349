using System.Globalization;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;
using StableAlignment.Embeddings.MiniLM;

// Usage: StableAlignment.Sandbox.Worker <log path> <rounds> <grid size> <delay ms per model call>
// Runs the offline society (MiniLM embeddings) into the log, resuming whatever the log already holds.
if (args.Length != 4)
{
    Console.Error.WriteLine("usage: StableAlignment.Sandbox.Worker <log path> <rounds> <grid size> <delay ms>");
    return 2;
}
string logPath = args[0];
int rounds = int.Parse(args[1], CultureInfo.InvariantCulture);
// MaxRoundsAhead = 0 commits round by round, so the parent sees the log grow before the run ends and can kill mid-run.
var options = new SandboxOptions
{
    GridSize = int.Parse(args[2], CultureInfo.InvariantCulture), Seed = 11, PeersPerInteraction = 3, MemorySeedSize = 10,
};
var delay = TimeSpan.FromMilliseconds(int.Parse(args[3], CultureInfo.InvariantCulture));

using var embeddings = new MiniLmEmbeddingGenerator();
using var client = new DelayedChatClient(new OfflineSocietyChatClient(options.Seed), delay).AsBuilder().UseModelCallPolicy().Build();
await using var sandbox = SandboxFactory.Create(options, new SandboxBackends { AgentClient = client, Embeddings = embeddings },
    new SandboxSchedule { MaxRoundsAhead = 0 });
var result = await sandbox.RunAsync(rounds, logPath);
Console.WriteLine(FormattableString.Invariant($"done: {result.InteractionsThisRun} this run, {result.InteractionsInLog} in the log"));
return 0;

/// <summary>Slows every call down so that the parent test can kill the process mid-run.</summary>
internal sealed class DelayedChatClient(IChatClient inner, TimeSpan delay) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        if (delay > TimeSpan.Zero) await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        return await base.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
    }
}
