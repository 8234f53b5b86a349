using System.Diagnostics.Metrics;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// The model-call pipeline's <see cref="Meter"/> and the source name of its spans (the pipeline uses Microsoft.Extensions.AI's
/// OpenTelemetry client under this name), so OpenTelemetry picks them up with <c>AddMeter(ModelCallTelemetry.Name)</c>
/// and <c>AddSource(ModelCallTelemetry.Name)</c>. Prompts, replies and credentials are never put on spans or metrics.
/// </summary>
public static class ModelCallTelemetry
{
    /// <summary>The name of the meter and of the activity source.</summary>
    public const string Name = "StableAlignment.ModelCalls";

    internal static readonly Meter Meter = new(Name);
    internal static readonly Counter<long> Attempts = Meter.CreateCounter<long>("model_calls.attempts", unit: "{call}", description: "Model call attempts, retries included.");
    internal static readonly Counter<long> Retries = Meter.CreateCounter<long>("model_calls.retries", unit: "{call}", description: "Attempts retried after a transient fault.");
    internal static readonly UpDownCounter<long> InFlight = Meter.CreateUpDownCounter<long>("model_calls.in_flight", unit: "{call}", description: "Calls holding a concurrency slot.");
    internal static readonly Counter<long> TokensIn = Meter.CreateCounter<long>("model_calls.tokens_in", unit: "{token}");
    internal static readonly Counter<long> TokensOut = Meter.CreateCounter<long>("model_calls.tokens_out", unit: "{token}");
}
