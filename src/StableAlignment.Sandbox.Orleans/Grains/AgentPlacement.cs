using System.Globalization;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// Spreads a run's agents over the silos like cards dealt round a table: agent id mod the number of compatible silos
/// (sorted by address). Model calls are made by the silo of the agent that needs them, so an even deal is an even share
/// of the calls, and with it of the per-silo concurrency caps. Orleans' default (resource-optimised) placement prefers
/// the silo that receives the first call, which put a whole run on one silo. A silo that dies has its agents dealt
/// again over the ones left.
/// </summary>
[Serializable, GenerateSerializer, Immutable]
internal sealed class AgentPlacement : PlacementStrategy
{
    public static AgentPlacement Instance { get; } = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class AgentPlacementAttribute() : PlacementAttribute(AgentPlacement.Instance);

internal sealed class AgentPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).Order().ToArray();
        string key = target.GrainIdentity.Key.ToString();
        int slash = key.LastIndexOf('/');
        int agent = slash >= 0 && int.TryParse(key.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int id) ? id
            : (int)(target.GrainIdentity.GetUniformHashCode() & 0x7fffffff);
        return Task.FromResult(silos[agent % silos.Length]);
    }
}
