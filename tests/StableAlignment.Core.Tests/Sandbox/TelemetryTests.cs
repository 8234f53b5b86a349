using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

public class TelemetryTests
{
    [Fact]
    public async Task Spans_and_counters_are_published_under_the_sandbox_and_model_call_names()
    {
        var spans = new ConcurrentBag<string>();
        var measurements = new ConcurrentDictionary<string, long>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is SandboxTelemetry.Name or ModelCallTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = a => spans.Add(a.OperationName),
        };
        ActivitySource.AddActivityListener(listener);
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name is SandboxTelemetry.Name or ModelCallTelemetry.Name) l.EnableMeasurementEvents(instrument);
            },
        };
        meters.SetMeasurementEventCallback<long>((instrument, value, _, _) => measurements.AddOrUpdate(instrument.Name, value, (_, v) => v + value));
        meters.Start();

        using var dir = new TempFolder();
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small());
        await sandbox.RunAsync(1, dir.File("log.db"));

        // Other tests may run at the same time, so these are lower bounds. 9 interactions x (draft + 3 peers + revision
        // + 1 observer x 2 answers x 2 scores) = 81 calls at least.
        Assert.Contains("sandbox.run", spans);
        Assert.True(spans.Count(s => s == "sandbox.interaction") >= 9, "interaction spans");
        // Model calls are spanned by Microsoft.Extensions.AI's OpenTelemetry client (gen_ai conventions: "chat <model>").
        Assert.True(spans.Count(s => s.StartsWith("chat", StringComparison.Ordinal)) >= 9 * 9, "model call spans");
        Assert.True(measurements.GetValueOrDefault("sandbox.interactions") >= 9, "interactions counter");
        Assert.True(measurements.GetValueOrDefault("model_calls.tokens_in") > 0, "tokens counter");
        Assert.True(measurements.GetValueOrDefault("model_calls.attempts") >= 9 * 9, "model call attempts counter");
    }
}
