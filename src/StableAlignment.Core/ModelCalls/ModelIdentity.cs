using Microsoft.Extensions.AI;

namespace StableAlignment.Core.ModelCalls;

/// <summary>What a chat client says it is (<see cref="ChatClientMetadata"/>), for provenance: fingerprints and records.</summary>
internal static class ModelIdentity
{
    /// <summary>The model id, or the provider's name when the client names no model; null when it says nothing.</summary>
    public static string? ModelId(IChatClient client)
    {
        var metadata = client.GetService<ChatClientMetadata>();
        return metadata?.DefaultModelId ?? metadata?.ProviderName;
    }

    /// <summary>"provider/model" (either part may be empty), the same for the same back-end and model wherever it runs.</summary>
    public static string Describe(IChatClient client)
    {
        var metadata = client.GetService<ChatClientMetadata>();
        return $"{metadata?.ProviderName}/{metadata?.DefaultModelId}";
    }
}
