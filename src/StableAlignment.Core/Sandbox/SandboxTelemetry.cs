using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// The sandbox's <see cref="ActivitySource"/> and <see cref="Meter"/>, both named <see cref="Name"/>, so OpenTelemetry
/// can pick them up with <c>AddSource(SandboxTelemetry.Name)</c> and <c>AddMeter(SandboxTelemetry.Name)</c>.
/// Prompts, replies and credentials are never put on spans or metrics.
/// </summary>
public static class SandboxTelemetry
{
    /// <summary>The name of the activity source and of the meter.</summary>
    public const string Name = "StableAlignment.Sandbox";

    internal static readonly ActivitySource Source = new(Name);
    internal static readonly Meter Meter = new(Name);
    internal static readonly Counter<long> Interactions = Meter.CreateCounter<long>("sandbox.interactions", description: "Interactions logged.");
    internal static readonly Counter<long> Calls = Meter.CreateCounter<long>("sandbox.model_calls", description: "Model call attempts.");
    internal static readonly Counter<long> Retries = Meter.CreateCounter<long>("sandbox.model_retries", description: "Model calls retried after a transient fault.");
    internal static readonly Counter<long> RatingFailures = Meter.CreateCounter<long>("sandbox.rating_failures", description: "Ratings recorded as failures.");
    internal static readonly Counter<long> TokensIn = Meter.CreateCounter<long>("sandbox.tokens_in", unit: "{token}");
    internal static readonly Counter<long> TokensOut = Meter.CreateCounter<long>("sandbox.tokens_out", unit: "{token}");
    internal static readonly UpDownCounter<long> InFlight = Meter.CreateUpDownCounter<long>("sandbox.model_calls_in_flight", unit: "{call}");
}
