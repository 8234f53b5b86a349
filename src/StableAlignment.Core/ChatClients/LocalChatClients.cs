using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.ChatClients;

/// <summary>
/// The parts every in-process <see cref="IChatClient"/> of this library shares: streaming a response that is
/// produced whole, and the standard <see cref="IChatClient.GetService"/> answers.
/// </summary>
internal static class LocalChatClients
{
    /// <summary>
    /// Produces the whole response when enumeration starts (so errors surface there, as for a real stream), then
    /// yields it as updates: there is nothing to stream sooner.
    /// </summary>
    public static async IAsyncEnumerable<ChatResponseUpdate> StreamWhole(Func<Task<ChatResponse>> respond,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var whole = await respond().WaitAsync(cancellationToken).ConfigureAwait(false);
        foreach (var update in whole.ToChatResponseUpdates()) yield return update;
    }

    /// <summary>The client's metadata, the client itself when it is of <paramref name="serviceType"/>, else null; keyed requests get null.</summary>
    public static object? GetService(IChatClient client, ChatClientMetadata metadata, Type serviceType, object? serviceKey)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return metadata;
        return serviceType.IsInstanceOfType(client) ? client : null;
    }
}
