using System.Diagnostics;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;

namespace StableAlignment.Benchmarks.Data;

/// <summary>
/// Load + build + tokenize + batch of a synthetic released-format file the size of sandbox_v2.json (169k samples).
/// Goal on the 2-core CI machine: under 15 s and under 1.5 GB peak working set. Run with
/// <c>dotnet run -c Release --project benchmarks/StableAlignment.Benchmarks -- --filter *AlignmentDataset*</c>.
/// The peak working set of the benchmark process is printed at the end ("PeakWorkingSet").
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
[MemoryDiagnoser]
public class AlignmentDatasetBenchmark
{
    /// <summary>Samples in the released v2 data.</summary>
    public const int Samples = 169_000;

    private string _path = "";
    private Tokenizer _tokenizer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"sa-bench-{Environment.ProcessId}.json");
        WriteSyntheticFile(_path, Samples, seed: 1);
        _tokenizer = ModelTokenizers.Gpt2();
        Console.WriteLine($"// Synthetic file: {new FileInfo(_path).Length / 1e6:F1} MB, {Samples} samples");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        File.Delete(_path);
        Console.WriteLine($"// PeakWorkingSet: {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
    }

    /// <summary>Stage 1 alone: stream the file into records.</summary>
    [Benchmark]
    public int Load() => AlignmentDataset.LoadAsync(_path).GetAwaiter().GetResult().Records.Count;

    /// <summary>Stages 1-2: load, then tokenize every query and response.</summary>
    [Benchmark]
    public long LoadTokenize() =>
        AlignmentDataset.LoadAsync(_path).GetAwaiter().GetResult().CreateBatcher(_tokenizer).ResponseCount;

    /// <summary>The whole pipeline: load, split, tokenize everything and build every batch of one epoch.</summary>
    [Benchmark(Baseline = true)]
    public long LoadTokenizeBatch()
    {
        var ds = AlignmentDataset.LoadAsync(_path).GetAwaiter().GetResult();
        var (train, _) = ds.Split(0.0);
        var batcher = train.CreateBatcher(_tokenizer, new PreferenceBatchOptions { MaxLength = 512, GroupsPerBatch = 8 });
        long tokens = 0;
        foreach (var batch in batcher.Batches())
        {
            using (batch)
                tokens += batch.InputIds.numel() - batch.PaddingTokens;
        }
        return tokens;
    }

    // Realistic shapes: v2's mix of 48.8k imitation, 94.6k self-critic and 25.6k realignment samples, about 3.5
    // responses per query, questions of 10-40 words, answers and comments of 20-180 words (English-like text).
    internal static void WriteSyntheticFile(string path, int samples, int seed)
    {
        var rng = new Random(seed);
        string[] vocab = ["the", "a", "you", "should", "not", "help", "with", "that", "because", "it", "is", "harmful", "illegal",
            "people", "money", "work", "answer", "response", "aligned", "social", "values", "honest", "kind", "safe", "could",
            "would", "please", "consider", "instead", "talk", "someone", "trust", "important", "understand", "why", "how",
            "what", "when", "feel", "better", "situation", "respect", "others", "rights", "law", "police", "friend", "family"];
        string Words(int min, int max)
        {
            int n = rng.Next(min, max);
            var words = new string[n];
            for (int i = 0; i < n; i++)
                words[i] = vocab[rng.Next(vocab.Length)];
            return string.Join(' ', words) + ".";
        }

        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartArray();
        int written = 0;
        while (written < samples)
        {
            double u = rng.NextDouble();
            string question = Words(10, 40) + "?";
            string query = u < 0.29
                ? $"### Instruction:\n{question}\n\n### Response:"
                : u < 0.85
                    ? $"### Instruction:\n{question} Please comment on the response in the input in terms of how well it is aligned with shared social values.\n\n### Input:\n{Words(20, 180)}\n\n### Response:"
                    : $"### Instruction:\n{question}\n{Words(20, 180)}\nPlease revise this response in terms of the feedback in the input.\n\n### Input:\n{Words(20, 80)}\n\n### Response:";
            int k = Math.Min(samples - written, rng.Next(1, 7));
            w.WriteStartObject();
            w.WriteString("query", query);
            w.WriteStartArray("responses");
            for (int i = 0; i < k; i++)
                w.WriteStringValue(Words(20, 180));
            w.WriteEndArray();
            w.WriteStartArray("scores");
            for (int i = 0; i < k; i++)
                w.WriteNumberValue(rng.Next(1, 8));
            w.WriteEndArray();
            w.WriteStartArray("models");
            for (int i = 0; i < k; i++)
                w.WriteStringValue("text-davinci-003");
            w.WriteEndArray();
            w.WriteEndObject();
            written += k;
        }
        w.WriteEndArray();
    }
}
