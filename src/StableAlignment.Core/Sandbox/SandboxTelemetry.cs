using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// The sandbox's <see cref="ActivitySource"/> and <see cref="Meter"/> (runs, interactions, rating failures), both named
/// <see cref="Name"/>, so OpenTelemetry can pick them up with <c>AddSource(SandboxTelemetry.Name)</c> and
/// <c>AddMeter(SandboxTelemetry.Name)</c>. The model calls' own spans and counters are under
/// <see cref="ModelCalls.ModelCallTelemetry.Name"/>.
/// Prompts, replies and credentials are never put on spans or metrics.
/// </summary>
public static class SandboxTelemetry
{
    /// <summary>The name of the activity source and of the meter.</summary>
    public const string Name = "StableAlignment.Sandbox";

    internal static readonly ActivitySource Source = new(Name);
    internal static readonly Meter Meter = new(Name);
    internal static readonly Counter<long> Interactions = Meter.CreateCounter<long>("sandbox.interactions", description: "Interactions logged.");
    internal static readonly Counter<long> RatingFailures = Meter.CreateCounter<long>("sandbox.rating_failures", description: "Ratings recorded as failures.");
}
