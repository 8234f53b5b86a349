using System.Globalization;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// The stable id of one model call, carried in <see cref="ChatOptions.AdditionalProperties"/>: the same call in a rerun
/// or a resumed run gets the same id, so offline back-ends can seed their randomness with it and record/replay can key
/// responses by it.
/// </summary>
public static class ModelCallId
{
    /// <summary>The <see cref="ChatOptions.AdditionalProperties"/> key that holds the id.</summary>
    public const string PropertyName = "stable_alignment.call_id";

    /// <summary>The id carried by <paramref name="options"/>, or the empty string when there is none.</summary>
    /// <param name="options">The call's options.</param>
    /// <returns>The id.</returns>
    public static string Of(ChatOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(PropertyName, out object? id) == true
            ? Convert.ToString(id, CultureInfo.InvariantCulture) ?? "" : "";
}
