using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

/// <summary>A scorer that returns scores from a script keyed by the exact request, and records its batch sizes.</summary>
internal sealed class ScriptedScorer : ILogLikelihoodScorer
{
    private readonly Func<LikelihoodRequest, double> _score;

    public ScriptedScorer(Func<LikelihoodRequest, double> score) => _score = score;

    public ScriptedScorer(IReadOnlyDictionary<LikelihoodRequest, double> script)
        : this(r => script.TryGetValue(r, out double s) ? s : throw new KeyNotFoundException($"No script entry for ({r.Context}|{r.Continuation})."))
    {
    }

    public List<int> BatchSizes { get; } = [];

    public List<LikelihoodRequest> Seen { get; } = [];

    public ValueTask<IReadOnlyList<LikelihoodScore>> ScoreAsync(IReadOnlyList<LikelihoodRequest> requests, CancellationToken cancellationToken)
    {
        BatchSizes.Add(requests.Count);
        Seen.AddRange(requests);
        return ValueTask.FromResult<IReadOnlyList<LikelihoodScore>>(requests.Select(r => new LikelihoodScore(_score(r), r.Continuation.Length)).ToArray());
    }

    /// <summary>
    /// A script under which each item's <paramref name="winner"/> choice scores best both raw and per character:
    /// the winner gets -len(winner); every other choice gets -(len(winner) + 1) - 2 len(choice).
    /// </summary>
    public static ScriptedScorer Choosing(MultipleChoiceTask task, Func<int, MultipleChoiceItem, int> winner)
    {
        var script = new Dictionary<LikelihoodRequest, double>();
        for (int i = 0; i < task.Items.Count; i++)
        {
            var item = task.Items[i];
            int w = winner(i, item);
            double lw = item.Choices[w].Length;
            for (int c = 0; c < item.Choices.Count; c++)
            {
                double score = c == w ? -lw : -(lw + 1) - (2.0 * item.Choices[c].Length);
                var key = LikelihoodRequest.Create(item.Context, task.TargetDelimiter + item.Choices[c]);
                if (script.TryGetValue(key, out double old) && old != score)
                {
                    throw new InvalidOperationException($"Conflicting script entries for item {item.Id}.");
                }
                script[key] = score;
            }
        }
        return new ScriptedScorer(script);
    }
}

/// <summary>
/// A tiny deterministic "language model": a character bigram table with random log-probabilities drawn from a seed.
/// The score of a continuation is the sum of log p(char | previous char), the first conditioned on the context's last
/// character, so it depends on the request alone.
/// </summary>
internal sealed class BigramScorer : ILogLikelihoodScorer
{
    private const int Buckets = 64;
    private readonly double[,] _logp = new double[Buckets, Buckets];

    public BigramScorer(int seed)
    {
        var rng = new Random(seed);
        for (int a = 0; a < Buckets; a++)
        {
            var w = new double[Buckets];
            double sum = 0;
            for (int b = 0; b < Buckets; b++)
            {
                w[b] = rng.NextDouble() + 0.01;
                sum += w[b];
            }
            for (int b = 0; b < Buckets; b++)
            {
                _logp[a, b] = Math.Log(w[b] / sum);
            }
        }
    }

    public List<int> BatchSizes { get; } = [];

    public double Score(LikelihoodRequest r)
    {
        int prev = r.Context.Length == 0 ? 0 : r.Context[^1] % Buckets;
        double total = 0;
        foreach (char ch in r.Continuation)
        {
            total += _logp[prev, ch % Buckets];
            prev = ch % Buckets;
        }
        return total;
    }

    public ValueTask<IReadOnlyList<LikelihoodScore>> ScoreAsync(IReadOnlyList<LikelihoodRequest> requests, CancellationToken cancellationToken)
    {
        BatchSizes.Add(requests.Count);
        return ValueTask.FromResult<IReadOnlyList<LikelihoodScore>>(requests.Select(r => new LikelihoodScore(Score(r))).ToArray());
    }
}
