using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Evaluation;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>
/// Text in, text out over a <see cref="CausalLanguageModel"/> and its tokenizer: sampling-based generation and
/// log-likelihood scoring of continuations. Not thread-safe: one call at a time per instance.
/// </summary>
public sealed class TextGenerator : ILogLikelihoodScorer
{
    private readonly CausalLanguageModel _model;

    /// <summary>Creates a generator.</summary>
    /// <param name="model">The model; its vocabulary must cover the tokenizer's ids.</param>
    /// <param name="tokenizer">The tokenizer, e.g. <see cref="ModelTokenizers.Gpt2"/>.</param>
    /// <param name="endOfTextId">The id that ends generation; null finds the tokenizer's end-of-text token.</param>
    public TextGenerator(CausalLanguageModel model, Tokenizer tokenizer, int? endOfTextId = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        EndOfTextId = endOfTextId ?? ModelTokenizers.EndOfTextId(tokenizer);
        if (EndOfTextId is int eot && (eot < 0 || eot >= model.Config.VocabSize))
            throw new ArgumentException($"End-of-text id {eot} is outside the model's vocabulary of {model.Config.VocabSize}.", nameof(endOfTextId));
    }

    /// <summary>The tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>The id that ends generation, if any.</summary>
    public int? EndOfTextId { get; }

    /// <summary>Generates a continuation of <paramref name="prompt"/>.</summary>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="options">Decoding options; null uses the defaults (greedy).</param>
    /// <param name="cancellationToken">Checked before every new token.</param>
    /// <returns>The generated text and tokens.</returns>
    public GenerationResult Generate(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        options = (options ?? new GenerationOptions()).Validate();
        var promptIds = Tokenizer.EncodeToIds(prompt).ToList();
        if (promptIds.Count == 0)
        {
            if (EndOfTextId is not int eot) throw new ArgumentException("The prompt is empty and the tokenizer has no end-of-text token to start from.", nameof(prompt));
            promptIds.Add(eot);
        }

        var generated = new List<int>();
        var stopAt = -1;
        var reason = GenerateIds(promptIds, options, generated, ids =>
        {
            if (options.StopSequences.Count == 0) return false;
            var text = Tokenizer.Decode(ids);
            stopAt = options.StopSequences.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            return stopAt >= 0;
        }, cancellationToken);
        var output = Tokenizer.Decode(generated);
        return new GenerationResult(stopAt >= 0 ? output[..stopAt] : output, generated, reason);
    }

    /// <summary>
    /// Core decoding loop: appends new ids to <paramref name="generated"/> until the end-of-text token, a stop
    /// condition on the generated ids, the token budget, or the context length.
    /// </summary>
    internal GenerationFinishReason GenerateIds(IReadOnlyList<int> prompt, GenerationOptions options, List<int> generated,
        Func<IReadOnlyList<int>, bool>? stop, CancellationToken cancellationToken)
    {
        var maxContext = _model.Config.MaxSequenceLength;
        // Keep the end of a prompt that would not fit with at least one new token.
        var context = prompt.Skip(Math.Max(0, prompt.Count - (maxContext - 1))).Select(i => (long)i).ToList();
        var random = options.Seed is int seed ? new Random(seed) : new Random();
        var wasTraining = _model.training;
        _model.eval();
        using var cache = options.UseKeyValueCache ? _model.CreateCache() : null;
        var seen = new HashSet<int>(generated);
        try
        {
            using var noGrad = no_grad();
            for (var step = 0; step < options.MaxNewTokens; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (context.Count >= maxContext) return GenerationFinishReason.Length;
                using var scope = NewDisposeScope();
                // With a cache only the newest token goes in; the first step pre-fills the whole prompt.
                var feed = cache is null || step == 0 ? context : context.GetRange(context.Count - 1, 1);
                using var ids = tensor(feed.ToArray(), dtype: ScalarType.Int64).unsqueeze(0);
                var logits = _model.Logits(ids, cache)[0, -1].to_type(ScalarType.Float32).cpu();
                var next = TokenSampler.Sample(logits.data<float>().ToArray(), options, random, seen);
                if (next == EndOfTextId) return GenerationFinishReason.Stop;
                generated.Add(next);
                seen.Add(next);
                context.Add(next);
                if (stop?.Invoke(generated) == true) return GenerationFinishReason.Stop;
            }
            return GenerationFinishReason.Length;
        }
        finally
        {
            if (wasTraining) _model.train();
        }
    }

    /// <summary>
    /// Scores continuations: for each (context, continuation) the sum of the log-probabilities of the
    /// continuation's tokens given the context. As lm-evaluation-harness does, the continuation's tokens are those
    /// that <c>context + continuation</c> has beyond the context's own encoding. Requests are batched with right padding,
    /// which causal attention makes invisible to the real tokens: a score does not depend on its batch.
    /// When context + continuation is longer than the model's context, the oldest context tokens are dropped; when the
    /// continuation alone is longer, it is scored in sliding windows (<see cref="ScoringWindows"/>) in which every token
    /// is predicted from at least the previous half-context of tokens, as far back as the model can see anyway.
    /// </summary>
    /// <param name="requests">The pairs to score; an empty context starts from the end-of-text token.</param>
    /// <param name="batchSize">Requests per forward pass. Default 8.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>One score per request, in order.</returns>
    public IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<(string Context, string Continuation)> requests,
        int batchSize = 8, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be positive.");

        // One window per request, unless a continuation is longer than the model's context.
        var sequences = new List<(long[] Tokens, int ContinuationStart)>(requests.Count);
        var owners = new List<int>(requests.Count);
        for (var i = 0; i < requests.Count; i++)
        {
            var (ctx, cont) = requests[i];
            ArgumentNullException.ThrowIfNull(ctx, $"{nameof(requests)}[{i}].Context");
            ArgumentNullException.ThrowIfNull(cont, $"{nameof(requests)}[{i}].Continuation");
            // As lm-evaluation-harness: encode context and context + continuation; the continuation is the tail.
            var contextIds = Tokenizer.EncodeToIds(ctx).ToList();
            var wholeIds = Tokenizer.EncodeToIds(ctx + cont);
            var continuationIds = wholeIds.Skip(Math.Min(contextIds.Count, wholeIds.Count)).ToList();
            if (continuationIds.Count == 0) throw new ArgumentException($"Request {i} has a continuation that adds no tokens.", nameof(requests));
            if (contextIds.Count == 0)
                contextIds.Add(EndOfTextId ?? throw new ArgumentException($"Request {i} has an empty context and the tokenizer has no end-of-text token.", nameof(requests)));
            var all = contextIds.Concat(continuationIds).Select(t => (long)t).ToArray();
            foreach (var (from, to, continuationStart) in ScoringWindows(all.Length, contextIds.Count, _model.Config.MaxSequenceLength))
            {
                sequences.Add((all[from..to], continuationStart));
                owners.Add(i);
            }
        }

        var windowScores = new ContinuationScore[sequences.Count];
        var wasTraining = _model.training;
        _model.eval();
        try
        {
            using var noGrad = no_grad();
            for (var start = 0; start < sequences.Count; start += batchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = sequences.Skip(start).Take(batchSize).ToList();
                ScoreBatch(batch, windowScores.AsSpan(start, batch.Count));
            }
        }
        finally
        {
            if (wasTraining) _model.train();
        }

        var scores = new ContinuationScore[requests.Count];
        for (var w = 0; w < windowScores.Length; w++)
        {
            var (sum, count, greedy) = scores[owners[w]];
            var window = windowScores[w];
            scores[owners[w]] = new ContinuationScore(sum + window.LogLikelihood, count + window.TokenCount, (count == 0 || greedy) && window.IsGreedy);
        }
        return scores;
    }

    /// <summary>
    /// The windows that score the tokens from <paramref name="continuationStart"/> to <paramref name="length"/> of a
    /// sequence, for a model that reads at most <paramref name="maxInput"/> tokens: each is <c>(From, To,
    /// ContinuationStart)</c>, the slice <c>[From, To)</c> and the first token it scores, relative to <c>From</c>.
    /// </summary>
    /// <remarks>
    /// A slice predicts its tokens from all before them in the slice, and the model sees all of it but the last token.
    /// When the whole sequence fits there is one window; when only the context overflows, one window without the
    /// oldest context tokens; when the continuation alone is too long, one window per block of <c>maxInput / 2</c>
    /// scored tokens, each reaching back as far as fits, so every token sees at least <c>maxInput / 2</c> tokens before
    /// it (or all of them, near the start).
    /// Every scored token is in exactly one window.
    /// </remarks>
    internal static IEnumerable<(int From, int To, int ContinuationStart)> ScoringWindows(int length, int continuationStart, int maxInput)
    {
        var overflow = Math.Max(0, length - 1 - maxInput);
        if (overflow < continuationStart)
        {
            yield return (overflow, length, continuationStart - overflow);
            yield break;
        }
        var block = Math.Max(1, maxInput / 2);
        for (var first = continuationStart; first < length; first += block)
        {
            var end = Math.Min(length, first + block);
            var from = Math.Max(0, end - 1 - maxInput);
            yield return (from, end, first - from);
        }
    }

    /// <inheritdoc />
    /// <remarks>Runs <see cref="ScoreContinuations"/> on a worker thread, as one batch.</remarks>
    public async ValueTask<IReadOnlyList<LikelihoodScore>> ScoreAsync(IReadOnlyList<LikelihoodRequest> requests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requests);
        if (requests.Count == 0) return [];
        var pairs = requests.Select(r => (r.Context, r.Continuation)).ToList();
        var scores = await Task.Run(() => ScoreContinuations(pairs, pairs.Count, cancellationToken), cancellationToken).ConfigureAwait(false);
        return scores.Select(s => new LikelihoodScore(s.LogLikelihood, s.TokenCount)).ToList();
    }

    private void ScoreBatch(List<(long[] Tokens, int ContinuationStart)> batch, Span<ContinuationScore> output)
    {
        using var scope = NewDisposeScope();
        var width = batch.Max(s => s.Tokens.Length - 1);
        var inputs = new long[batch.Count * width];
        var targets = new long[batch.Count * width];
        for (var b = 0; b < batch.Count; b++)
        {
            var tokens = batch[b].Tokens;
            Array.Copy(tokens, 0, inputs, b * width, tokens.Length - 1);
            Array.Copy(tokens, 1, targets, b * width, tokens.Length - 1);
        }

        var device = _model.parameters().First().device;
        var inputIds = tensor(inputs, dtype: ScalarType.Int64, device: device).view(batch.Count, width);
        var targetIds = tensor(targets, dtype: ScalarType.Int64, device: device).view(batch.Count, width);
        var logits = _model.forward(inputIds).to_type(ScalarType.Float32);
        var logProbs = nn.functional.log_softmax(logits, -1).gather(2, targetIds.unsqueeze(2)).squeeze(2).to_type(ScalarType.Float64).cpu();
        var greedy = logits.argmax(2).eq(targetIds).cpu();
        var lp = logProbs.data<double>().ToArray();
        var hit = greedy.data<bool>().ToArray();

        for (var b = 0; b < batch.Count; b++)
        {
            var (tokens, continuationStart) = batch[b];
            double sum = 0;
            var allGreedy = true;
            // Input position t predicts token t + 1: continuation tokens are predicted from continuationStart - 1 on.
            for (var t = continuationStart - 1; t < tokens.Length - 1; t++)
            {
                sum += lp[b * width + t];
                allGreedy &= hit[b * width + t];
            }
            output[b] = new ContinuationScore(sum, tokens.Length - continuationStart, allGreedy);
        }
    }
}
