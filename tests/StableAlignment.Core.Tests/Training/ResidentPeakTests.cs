using System.Globalization;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Tests.TestSupport;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

/// <summary>
/// The trainer's peak-memory figures: a stage's peak sees the memory it touched, and windows that overlap (trainers side
/// by side in one process) keep their peaks when another restarts the kernel's mark. The figures are the whole process's
/// resident set, so this class runs alone, after the parallel ones: another test's allocations would count here.
/// </summary>
[Collection(ProcessWideMeasurements.Name)]
public sealed class ResidentPeakTests
{
    private static readonly CausalLanguageModelConfig Tiny = new()
    {
        VocabSize = 23, HiddenSize = 16, IntermediateSize = 32, NumLayers = 2, NumHeads = 2, NumKeyValueHeads = 1, MaxSequenceLength = 16,
    };

    private static TrainerOptions Fast => new() { LearningRate = 1e-2, WarmupRatio = 0.1, ValidateEverySteps = 0 };

    private const long Touched = 300L << 20;

    [ProcStatusFact]
    public void Each_stage_reports_the_peak_resident_memory_it_reached()
    {
        // Earlier tests' undisposed tensors are freed by finalizers whenever a collection runs; flushed here so that
        // no such release lowers the resident set while a stage is measured.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var model = new CausalLanguageModel(Tiny, seed: 8);
        using var trainer = new StableAlignmentTrainer(model, Fast with { HeapTrimThresholdBytes = 0 });
        var touching = new TouchingSource(new SyntheticPreferenceSource(1, 2), Touched);
        var report = trainer.Train(
        [
            new() { Name = "small", Train = new SyntheticPreferenceSource(1, 2) },
            new() { Name = "large", Train = touching },
        ]);
        var afterRun = ReadHighWaterMark();

        // Against the resident set inside the large stage, just before its touch: the small stage's peak is no baseline,
        // as the process may hold less by the time the large stage starts.
        var (small, large) = (report.Stages[0], report.Stages[1]);
        Assert.True(large.PeakResidentBytes - touching.ResidentBeforeTouch >= Touched * 8 / 10,
            $"the stage that touched {Touched >> 20} MiB from {touching.ResidentBeforeTouch >> 20} MiB peaked at {large.PeakResidentBytes >> 20} MiB");
        Assert.True(small.PeakResidentBytes < large.PeakResidentBytes, $"small stage {small.PeakResidentBytes >> 20} MiB, large {large.PeakResidentBytes >> 20} MiB");
        Assert.True(large.PeakResidentBytes <= afterRun, $"{large.PeakResidentBytes} > VmHWM {afterRun} read afterwards");
        Assert.Equal(report.Stages.Max(s => s.PeakResidentBytes), report.PeakResidentBytes);
        foreach (var stage in report.Stages)
        {
            var steps = report.Steps.Where(s => s.StageName == stage.Name).Select(s => s.PeakResidentBytes).ToList();
            Assert.All(steps, p => Assert.InRange(p, 1, stage.PeakResidentBytes));
            Assert.Equal(steps.Order(), steps); // a running peak within the stage
        }
    }

    [ProcStatusFact]
    public void A_window_keeps_its_peak_when_a_later_window_restarts_the_mark()
    {
        using var first = ResidentMemory.StartWindow();
        var before = first.Bytes;
        Touch(Touched);
        using var second = ResidentMemory.StartWindow(); // restarts VmHWM at the current, smaller, resident size
        Assert.True(ReadHighWaterMark() < before + Touched * 8 / 10, "the kernel's mark was not restarted, so this test shows nothing");
        Assert.True(first.Bytes >= before + Touched * 8 / 10, $"the first window lost its peak: {first.Bytes >> 20} MiB after touching {Touched >> 20} MiB");
        Assert.True(second.Bytes < first.Bytes);
        var seen = first.Bytes;
        Touch(Touched / 2);
        Assert.True(first.Bytes >= seen); // never decreases
    }

    [ProcStatusFact]
    public void A_trainer_returning_freed_memory_leaves_no_freed_activation_resident()
    {
        // Freeing a mapped 16 MiB buffer makes glibc serve smaller ones from its heap from then on (its threshold rises
        // to the freed size), unless the trainer has fixed the threshold: then the 8 MiB buffers below stay resident.
        Touch(16 << 20);
        using var model = new CausalLanguageModel(Tiny, seed: 9);
        using var trainer = new StableAlignmentTrainer(model, Fast with { ReturnFreedMemory = true });
        var buffers = Enumerable.Range(0, 40).Select(_ => torch.ones(2L << 20)).ToList();
        var held = ReadResident();
        foreach (var buffer in buffers) buffer.Dispose();
        var freed = held - ReadResident();
        Assert.True(freed >= 40L * (8 << 20) * 8 / 10, $"freeing 320 MiB of tensors returned {freed >> 20} MiB to the system");
    }

    [ProcStatusFact]
    public void A_trainer_step_hands_back_the_free_heap_pages_above_its_threshold()
    {
        const long Holes = 150L << 20;
        Touch(16 << 20); // from here the 512 KiB buffers below come from the heap, whatever the threshold (see above)
        using var model = new CausalLanguageModel(Tiny, seed: 10);
        long Returned(long threshold)
        {
            // 300 MiB of 512 KiB buffers, every other one freed: holes between live buffers, which glibc keeps resident.
            var buffers = Enumerable.Range(0, 600).Select(_ => torch.ones(128L << 10)).ToList();
            for (int i = 0; i < buffers.Count; i += 2) buffers[i].Dispose();
            var before = ReadResident();
            using (var trainer = new StableAlignmentTrainer(model, Fast with { HeapTrimThresholdBytes = threshold }))
                trainer.Train([new() { Name = "one", Train = new SyntheticPreferenceSource(1, 1) }]);
            var returned = before - ReadResident();
            foreach (var buffer in buffers) buffer.Dispose();
            return returned;
        }

        var kept = Returned(0);
        var handedBack = Returned(64L << 20);
        GlibcAllocator.ReleaseFreePages(1); // the next test starts from a trimmed heap
        Assert.True(handedBack >= Holes * 8 / 10, $"a step over {Holes >> 20} MiB of free heap with a 64 MiB threshold returned {handedBack >> 20} MiB");
        Assert.True(kept < Holes / 4, $"a step with the threshold 0 (never trim) returned {kept >> 20} MiB: the holes were not resident, so this test shows nothing");
        Assert.Equal(nameof(TrainerOptions.HeapTrimThresholdBytes),
            Assert.Throws<ArgumentException>(() => new TrainerOptions { HeapTrimThresholdBytes = -1 }.Validate()).ParamName);
    }

    private static void Touch(long bytes)
    {
        using var buffer = torch.empty(bytes / 4, ScalarType.Float32);
        buffer.fill_(1);
    }

    /// <summary>VmHWM of this process in bytes, parsed here from /proc/self/status.</summary>
    private static long ReadHighWaterMark() => ReadStatus("VmHWM:");

    /// <summary>VmRSS of this process in bytes.</summary>
    private static long ReadResident() => ReadStatus("VmRSS:");

    private static long ReadStatus(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>Touches (and frees) a buffer of the given size before its first batch, as a large step would.</summary>
    private sealed class TouchingSource(IPreferenceBatchSource inner, long bytes) : IPreferenceBatchSource
    {
        public int? Count => inner.Count;

        /// <summary>VmRSS just before the touch, within the stage's measuring window.</summary>
        public long ResidentBeforeTouch { get; private set; }

        public IEnumerable<PreferenceBatch> Batches(int epoch)
        {
            ResidentBeforeTouch = ReadResident();
            Touch(bytes);
            foreach (var batch in inner.Batches(epoch)) yield return batch;
        }
    }
}

/// <summary>A fact that needs Linux's <c>/proc/self/status</c> (to read the resident high-water mark independently); skipped elsewhere.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class ProcStatusFactAttribute : FactAttribute
{
    public ProcStatusFactAttribute()
    {
        if (!File.Exists("/proc/self/status")) Skip = "Needs Linux's /proc/self/status to read the resident high-water mark.";
    }
}
