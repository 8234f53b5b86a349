using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Models;
using TorchSharp;

namespace StableAlignment.Core.Data;

/// <summary>
/// Holds the tokens of a dataset and cuts them into padded <see cref="PreferenceBatch"/>es, epoch by epoch.
/// Create it with <see cref="AlignmentDataset.CreateBatcher"/>.
/// </summary>
public sealed class PreferenceBatcher : IPreferenceBatchSource
{
    private readonly PreferenceBatchOptions _options;
    private readonly string[] _queries;
    private readonly int[][] _promptTokens;
    private readonly Row[][] _rows; // kept responses of each group
    private readonly int _padId;

    private readonly record struct Row(int[] Tokens, float Rating);

    /// <summary>One row of a planned batch: which group and which kept response.</summary>
    internal readonly record struct RowRef(int Group, int Response);

    internal PreferenceBatcher(AlignmentDataset dataset, Tokenizer tokenizer, PreferenceBatchOptions options,
        IProgress<int>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(tokenizer);
        _options = options;
        _padId = options.PadTokenId ?? EndOfTextId(tokenizer) ?? 0;
        int? endOfText = options.AppendEndOfText
            ? ModelTokenizers.EndOfTextId(tokenizer) ?? throw new ArgumentException(
                "PreferenceBatchOptions.AppendEndOfText needs a tokenizer with an end-of-text token; this one has none.", nameof(tokenizer))
            : null;
        var records = dataset.Records;
        int n = records.Count;
        _queries = new string[n];
        _promptTokens = new int[n][];
        _rows = new Row[n][];
        long skipped = 0, truncatedResponses = 0;
        int done = 0;
        try
        {
            Parallel.For(0, n, new ParallelOptions { CancellationToken = cancellationToken }, g =>
            {
                var r = records[g];
                _queries[g] = r.Query;
                _promptTokens[g] = [.. tokenizer.EncodeToIds(r.Query)];
                var rows = new List<Row>(r.Responses.Count);
                for (int i = 0; i < r.Responses.Count; i++)
                {
                    int[] tokens = [.. tokenizer.EncodeToIds(r.Responses[i])];
                    if (tokens.Length == 0)
                        continue; // nothing to learn; cannot happen for the non-empty responses records require
                    if (endOfText is int eot) tokens = [.. tokens, eot];
                    if (tokens.Length > options.MaxLength - 1)
                    {
                        switch (options.OverlongResponse)
                        {
                            case OverlongResponsePolicy.Skip:
                                Interlocked.Increment(ref skipped);
                                continue;
                            case OverlongResponsePolicy.Truncate:
                                Interlocked.Increment(ref truncatedResponses);
                                tokens = tokens[..(options.MaxLength - 1)];
                                break;
                            default:
                                throw new InvalidOperationException(
                                    $"Response {i} of record {g} (query \"{Excerpt(r.Query)}\") has {tokens.Length} tokens, more than " +
                                    $"MaxLength - 1 = {options.MaxLength - 1}; raise MaxLength or choose OverlongResponsePolicy.Skip or Truncate.");
                        }
                    }
                    rows.Add(new Row(tokens, (float)r.Scores[i]));
                }
                _rows[g] = [.. rows];
                int d = Interlocked.Increment(ref done);
                if ((d & 1023) == 0)
                    progress?.Report(d);
            });
        }
        catch (AggregateException ex)
        {
            // Surface the caller's own error (for example the overlong-response refusal), not the parallel wrapper.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(ex.Flatten().InnerExceptions[0]);
        }
        progress?.Report(n);
        SkippedResponses = skipped;
        TruncatedResponses = truncatedResponses;
        long truncatedPrompts = 0;
        for (int g = 0; g < n; g++)
        {
            foreach (var row in _rows[g])
            {
                if (_promptTokens[g].Length + row.Tokens.Length > options.MaxLength)
                    truncatedPrompts++;
            }
        }
        TruncatedPrompts = truncatedPrompts;
    }

    /// <summary>The options in use.</summary>
    public PreferenceBatchOptions Options => _options;

    /// <summary>The padding id written into <see cref="PreferenceBatch.InputIds"/>.</summary>
    public int PadTokenId => _padId;

    /// <summary>Responses left out because they were too long (<see cref="OverlongResponsePolicy.Skip"/>).</summary>
    public long SkippedResponses { get; }

    /// <summary>Responses cut to <c>MaxLength - 1</c> tokens (<see cref="OverlongResponsePolicy.Truncate"/>).</summary>
    public long TruncatedResponses { get; }

    /// <summary>Rows whose prompt is cut from the left to fit.</summary>
    public long TruncatedPrompts { get; }

    /// <summary>The responses kept after tokenization (each can appear in a batch).</summary>
    public long ResponseCount => _rows.Sum(r => (long)r.Length);

    // Prompt tokens kept in front of a response: all of them when they fit, else the last ones (cut from the left).
    private int KeptPrompt(RowRef row) =>
        Math.Min(_promptTokens[row.Group].Length, _options.MaxLength - _rows[row.Group][row.Response].Tokens.Length);

    private int RowLength(RowRef row) => KeptPrompt(row) + _rows[row.Group][row.Response].Tokens.Length;

    /// <summary>
    /// The batches of one epoch as lists of groups, each a list of rows. Deterministic in (seed, epoch).
    /// </summary>
    internal List<List<List<RowRef>>> Plan(int epoch)
    {
        var rng = new Random(unchecked((_options.Seed * 1_000_003) + epoch));
        var groups = new List<List<RowRef>>();
        for (int g = 0; g < _rows.Length; g++)
        {
            var rows = _rows[g];
            if (rows.Length == 0)
                continue;
            if (_options.Grouping == BatchGrouping.EachResponse)
            {
                for (int i = 0; i < rows.Length; i++)
                    groups.Add([new RowRef(g, i)]);
                continue;
            }
            // Best-rated first (the first on ties), then a uniform draw without replacement from the others.
            int best = 0;
            for (int i = 1; i < rows.Length; i++)
            {
                if (rows[i].Rating > rows[best].Rating)
                    best = i;
            }
            var others = Enumerable.Range(0, rows.Length).Where(i => i != best).ToArray();
            int take = Math.Min(others.Length, _options.ResponsesPerQuery - 1);
            for (int i = 0; i < take; i++)
            {
                int j = rng.Next(i, others.Length);
                (others[i], others[j]) = (others[j], others[i]);
            }
            var chosen = new List<RowRef>(take + 1) { new(g, best) };
            for (int i = 0; i < take; i++)
                chosen.Add(new RowRef(g, others[i]));
            groups.Add(chosen);
        }

        var order = Enumerable.Range(0, groups.Count).ToArray();
        rng.Shuffle(order);
        if (_options.BucketByLength)
        {
            // Stable sort of a shuffled order: equal lengths are still mixed between epochs.
            var lengths = groups.ConvertAll(grp => grp.Max(RowLength));
            order = [.. order.OrderBy(i => lengths[i])];
        }
        var batches = new List<List<List<RowRef>>>();
        for (int i = 0; i < order.Length; i += _options.GroupsPerBatch)
        {
            var batch = new List<List<RowRef>>(_options.GroupsPerBatch);
            foreach (int k in order.AsSpan(i, Math.Min(_options.GroupsPerBatch, order.Length - i)))
                batch.Add(groups[k]);
            batches.Add(batch);
        }
        if (_options.BucketByLength)
            rng.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batches));
        return batches;
    }

    /// <summary>The number of batches in an epoch.</summary>
    /// <param name="epoch">The epoch (changes the response draw and the order).</param>
    /// <returns>How many batches <see cref="Batches"/> yields.</returns>
    public int BatchCount(int epoch = 0) => Plan(epoch).Count;

    /// <summary>The share of padding positions over all batches of an epoch, without building tensors.</summary>
    /// <param name="epoch">The epoch.</param>
    /// <returns>Padding positions / all positions, in [0, 1].</returns>
    public double PaddingShare(int epoch = 0)
    {
        long total = 0, used = 0;
        foreach (var batch in Plan(epoch))
        {
            var lengths = batch.SelectMany(g => g).Select(RowLength).ToList();
            total += (long)lengths.Count * lengths.Max();
            used += lengths.Sum();
        }
        return total == 0 ? 0 : (double)(total - used) / total;
    }

    /// <summary>
    /// The padded batches of one epoch, built lazily; dispose each batch when done with it.
    /// </summary>
    /// <param name="epoch">The epoch (changes the response draw and the order).</param>
    /// <param name="cancellationToken">Stops the enumeration.</param>
    /// <returns>The batches.</returns>
    public IEnumerable<PreferenceBatch> Batches(int epoch = 0, CancellationToken cancellationToken = default)
    {
        foreach (var plan in Plan(epoch))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return Build(plan);
        }
    }

    /// <inheritdoc />
    IEnumerable<PreferenceBatch> IPreferenceBatchSource.Batches(int epoch) => Batches(epoch);

    /// <inheritdoc />
    int? IPreferenceBatchSource.Count => BatchCount();

    internal PreferenceBatch Build(List<List<RowRef>> plan)
    {
        int n = 0, t = 0;
        foreach (var group in plan)
        {
            foreach (var r in group)
            {
                n++;
                t = Math.Max(t, RowLength(r));
            }
        }
        var ids = new long[n * t];
        var targets = new long[n * t];
        var mask = new bool[n * t];
        var groupIds = new long[n];
        var ratings = new float[n];
        var queries = new List<string>(plan.Count);
        Array.Fill(ids, _padId);
        Array.Fill(targets, PreferenceBatch.IgnoreIndex);
        long padding = 0;
        int i = 0;
        for (int g = 0; g < plan.Count; g++)
        {
            queries.Add(_queries[plan[g][0].Group]);
            foreach (var r in plan[g])
            {
                var prompt = _promptTokens[r.Group];
                var row = _rows[r.Group][r.Response];
                int p = KeptPrompt(r), length = p + row.Tokens.Length, o = i * t;
                for (int k = 0; k < p; k++)
                    ids[o + k] = prompt[prompt.Length - p + k];
                for (int k = 0; k < row.Tokens.Length; k++)
                {
                    ids[o + p + k] = row.Tokens[k];
                    // Logits at position j predict token j + 1: response token k is the target at p + k - 1.
                    targets[o + p + k - 1] = row.Tokens[k];
                    mask[o + p + k - 1] = true;
                }
                groupIds[i] = g;
                ratings[i] = row.Rating;
                padding += t - length;
                i++;
            }
        }
        var shape = new long[] { n, t };
        return new PreferenceBatch
        {
            InputIds = torch.tensor(ids, shape),
            Targets = torch.tensor(targets, shape),
            LossMask = torch.tensor(mask, shape),
            Groups = torch.tensor(groupIds),
            Ratings = torch.tensor(ratings),
            Queries = queries,
            PaddingTokens = padding,
        };
    }

    private static string Excerpt(string text) => text.Length <= 60 ? text : string.Concat(text.AsSpan(0, 57), "...");

    private static int? EndOfTextId(Tokenizer tokenizer) =>
        tokenizer is TiktokenTokenizer tk && tk.SpecialTokens is { } special && special.TryGetValue("<|endoftext|>", out int id) ? id : null;
}
