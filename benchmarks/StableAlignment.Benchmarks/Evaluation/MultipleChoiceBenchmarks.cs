using BenchmarkDotNet.Attributes;
using StableAlignment.Core.Evaluation;

namespace StableAlignment.Benchmarks.Evaluation;

/// <summary>
/// The harness's own cost, with a scorer that does no work: 2,000 items x 4 choices (8,000 requests) through
/// <see cref="MultipleChoiceEvaluator"/>, then the report and the per-item JSON Lines. A real model costs orders of
/// magnitude more per request; this checks that the harness adds nothing noticeable on top.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class MultipleChoiceBenchmarks
{
    private const int Items = 2_000, Choices = 4;
    private MultipleChoiceTask _task = null!;
    private TaskResults _results = null!;
    private readonly ConstantScorer _scorer = new();

    private sealed class ConstantScorer : ILogLikelihoodScorer
    {
        public ValueTask<IReadOnlyList<LikelihoodScore>> ScoreAsync(IReadOnlyList<LikelihoodRequest> requests, CancellationToken cancellationToken)
        {
            var scores = new LikelihoodScore[requests.Count];
            for (int i = 0; i < scores.Length; i++)
            {
                scores[i] = new LikelihoodScore(-requests[i].Continuation.Length);
            }
            return ValueTask.FromResult<IReadOnlyList<LikelihoodScore>>(scores);
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var items = new MultipleChoiceItem[Items];
        for (int i = 0; i < Items; i++)
        {
            var choices = Enumerable.Range(0, Choices).Select(c => $"answer {c} to question {i}, " + new string('x', (i * 7 + c * 13) % 40)).ToArray();
            items[i] = MultipleChoiceItem.WithGold($"q{i}", $"Question {i}: a prompt of some length, as a benchmark would have.\nAnswer:", choices, i % Choices, $"cat{i % 10}");
        }
        _task = new MultipleChoiceTask("bench", items);
        _results = MultipleChoiceEvaluator.EvaluateAsync(_task, _scorer).GetAwaiter().GetResult();
    }

    [Benchmark]
    public async Task<TaskResults> Evaluate() => await MultipleChoiceEvaluator.EvaluateAsync(_task, _scorer, new MultipleChoiceOptions { BatchSize = 32 });

    [Benchmark]
    public string ReportAndJsonLines() => EvaluationReport.Create([_results]).ToMarkdown() + ItemResultsJsonl.ToJsonLines([_results]);
}
