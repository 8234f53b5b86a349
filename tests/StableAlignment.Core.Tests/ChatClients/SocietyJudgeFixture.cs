using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.ChatClients;

/// <summary>One offline judge over the hashing embedder, fitted once for the whole test run (fitting embeds the bank).</summary>
internal static class SocietyJudgeFixture
{
    private static readonly HashingEmbeddingGenerator Embeddings = new();

    private static readonly Lazy<SocietyJudge> Shared = new(() => SocietyJudge.CreateAsync(Embeddings).GetAwaiter().GetResult());

    public static SocietyJudge Judge => Shared.Value;
}
