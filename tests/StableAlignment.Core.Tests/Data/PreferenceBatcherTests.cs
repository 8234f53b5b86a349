using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using TorchSharp;

namespace StableAlignment.Core.Tests.Data;

public class PreferenceBatcherTests
{
    private const long Ignore = -100;

    private static AlignmentDataset RandomDataset(int queries, int seed)
    {
        var rng = new Random(seed);
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => "word" + rng.Next(0, 500)));
        var records = Enumerable.Range(0, queries).Select(q =>
        {
            int k = rng.Next(1, 6);
            return new AlignmentRecord($"### Instruction:\nquestion {q}: {Words(rng.Next(1, 30))}\n\n### Response:",
                [.. Enumerable.Range(0, k).Select(i => $" answer {i} " + Words(rng.Next(1, 40)))],
                [.. Enumerable.Range(0, k).Select(_ => (double)rng.Next(1, 8))],
                [.. Enumerable.Range(0, k).Select(_ => "")]);
        }).ToList();
        return AlignmentDataset.FromRecords(records);
    }

    // The oracle: tokenize query and response directly, cut the query from the left to fit, and derive every tensor
    // entry of the row with plain loops.
    internal static void AssertRowMatches(PreferenceBatch batch, int n, string query, string response, double rating, int maxLength, int padId)
    {
        var q = ModelTokenizers.Gpt2().EncodeToIds(query).ToArray();
        var r = ModelTokenizers.Gpt2().EncodeToIds(response).ToArray();
        int keep = Math.Min(q.Length, maxLength - r.Length);
        var row = q[(q.Length - keep)..].Concat(r).ToArray();
        long t = batch.InputIds.shape[1];
        var ids = batch.InputIds[n].data<long>().ToArray();
        var targets = batch.Targets[n].data<long>().ToArray();
        var mask = batch.LossMask[n].data<bool>().ToArray();
        for (int i = 0; i < t; i++)
        {
            Assert.Equal(i < row.Length ? row[i] : padId, ids[i]);
            bool isResponseTarget = i + 1 >= keep && i + 1 < row.Length;
            Assert.Equal(isResponseTarget ? row[i + 1] : Ignore, targets[i]);
            Assert.Equal(isResponseTarget, mask[i]);
        }
        Assert.Equal(r.Length, mask.Count(m => m));
        Assert.Equal((float)rating, batch.Ratings[n].item<float>());
    }

    [Theory]
    [InlineData(512, BatchGrouping.ByQuery)]
    [InlineData(24, BatchGrouping.ByQuery)]
    [InlineData(512, BatchGrouping.EachResponse)]
    public void Batch_tensors_agree_with_token_counts(int maxLength, BatchGrouping grouping)
    {
        var ds = RandomDataset(30, seed: maxLength);
        var options = new PreferenceBatchOptions { MaxLength = maxLength, Grouping = grouping, GroupsPerBatch = 4, OverlongResponse = OverlongResponsePolicy.Skip };
        var batcher = ds.CreateBatcher(ModelTokenizers.Gpt2(), options);
        var byQuery = ds.Records.ToDictionary(r => r.Query);
        long rows = 0, padding = 0, positions = 0;
        foreach (var batch in batcher.Batches())
        {
            using (batch)
            {
                int n = (int)batch.InputIds.shape[0];
                var groups = batch.Groups.data<long>().ToArray();
                Assert.Equal(Enumerable.Range(0, batch.Queries.Count).Select(i => (long)i), groups.Distinct().Order());
                for (int i = 0; i < n; i++)
                {
                    var record = byQuery[batch.Queries[(int)groups[i]]];
                    // Identify the response by its tokens at the end of the row (responses are distinct within a record).
                    int responseTokens = batch.LossMask[i].data<bool>().Count(m => m);
                    int candidates = record.Responses.Count(s => ModelTokenizers.Gpt2().CountTokens(s) == responseTokens);
                    Assert.True(candidates >= 1);
                    var match = Enumerable.Range(0, record.Responses.Count).Where(j => ModelTokenizers.Gpt2().CountTokens(record.Responses[j]) == responseTokens)
                        .First(j => RowEndsWith(batch, i, ModelTokenizers.Gpt2().EncodeToIds(record.Responses[j])));
                    AssertRowMatches(batch, i, record.Query, record.Responses[match], record.Scores[match], maxLength, batcher.PadTokenId);
                }
                Assert.Equal(batch.InputIds.numel() - batch.LossMask.sum().item<long>() - KeptPromptTokens(batch), batch.PaddingTokens);
                rows += n;
                padding += batch.PaddingTokens;
                positions += batch.InputIds.numel();
            }
        }
        long expectedRows = grouping == BatchGrouping.EachResponse
            ? batcher.ResponseCount
            : ds.Records.Sum(r => Math.Min(3, r.Responses.Count(s => ModelTokenizers.Gpt2().CountTokens(s) <= maxLength - 1)));
        Assert.Equal(expectedRows, rows);
        Assert.Equal((double)padding / positions, batcher.PaddingShare(), 12);
    }

    // The kept prompt length of each row, from its first target position (the last prompt token predicts the first
    // response token). Positions = padding + kept prompt tokens + response tokens.
    private static long KeptPromptTokens(PreferenceBatch batch)
    {
        long count = 0;
        for (int i = 0; i < batch.InputIds.shape[0]; i++)
        {
            var targets = batch.Targets[i].data<long>().ToArray();
            int firstTarget = Array.FindIndex(targets, x => x != Ignore);
            count += firstTarget + 1;
        }
        return count;
    }

    private static bool RowEndsWith(PreferenceBatch batch, int row, IReadOnlyList<int> tokens)
    {
        var targets = batch.Targets[row].data<long>().ToArray().Where(x => x != Ignore).ToArray();
        return targets.SequenceEqual(tokens.Select(x => (long)x));
    }

    [Fact]
    public void Each_query_contributes_up_to_k_responses_best_always_included_without_repeats()
    {
        var ds = RandomDataset(60, seed: 9);
        var options = new PreferenceBatchOptions { ResponsesPerQuery = 3, GroupsPerBatch = 5 };
        var batcher = ds.CreateBatcher(ModelTokenizers.Gpt2(), options);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var plan = batcher.Plan(epoch);
            var groups = plan.SelectMany(b => b).ToList();
            Assert.Equal(ds.Records.Count, groups.Count);
            Assert.Equal(Enumerable.Range(0, ds.Records.Count), groups.Select(g => g[0].Group).Order());
            foreach (var g in groups)
            {
                var record = ds.Records[g[0].Group];
                Assert.All(g, r => Assert.Equal(g[0].Group, r.Group));
                Assert.Equal(Math.Min(3, record.Responses.Count), g.Count);
                Assert.Equal(g.Count, g.Select(r => r.Response).Distinct().Count());
                Assert.Equal(record.Scores.Max(), record.Scores[g[0].Response]);
                Assert.Equal(record.Scores.ToList().IndexOf(record.Scores.Max()), g[0].Response);
            }
        }
        Assert.Equal(Flatten(batcher.Plan(1)), Flatten(ds.CreateBatcher(ModelTokenizers.Gpt2(), options).Plan(1)));
        Assert.NotEqual(Flatten(batcher.Plan(1)), Flatten(batcher.Plan(2)));
    }

    private static List<(int, int)> Flatten(List<List<List<PreferenceBatcher.RowRef>>> plan) =>
        [.. plan.SelectMany(b => b).SelectMany(g => g).Select(r => (r.Group, r.Response))];

    [Fact]
    public void Bucketing_by_length_cuts_padding()
    {
        var ds = RandomDataset(200, seed: 4);
        double bucketed = ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { BucketByLength = true }).PaddingShare();
        double plain = ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { BucketByLength = false }).PaddingShare();
        Assert.True(bucketed < plain, $"bucketed {bucketed:P1} vs plain {plain:P1}");
    }

    [Fact]
    public void Overlong_responses_are_skipped_truncated_or_refused_as_configured()
    {
        string longResponse = string.Join(' ', Enumerable.Repeat("token", 40));
        var ds = AlignmentDataset.FromRecords([new AlignmentRecord("### Instruction:\nq\n\n### Response:", [longResponse, " short"], [7, 2], ["", ""])]);
        int rLength = ModelTokenizers.Gpt2().CountTokens(longResponse);
        Assert.True(rLength > 15);

        var skip = ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { MaxLength = 16 });
        Assert.Equal(1, skip.SkippedResponses);
        Assert.Equal(1, skip.ResponseCount);

        var cut = ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { MaxLength = 16, OverlongResponse = OverlongResponsePolicy.Truncate });
        Assert.Equal(1, cut.TruncatedResponses);
        using var batch = cut.Batches().Single();
        // The long response keeps 15 tokens behind the last prompt token: 15 targets.
        var masks = Enumerable.Range(0, 2).Select(i => batch.LossMask[i].data<bool>().Count(m => m)).Order().ToArray();
        Assert.Equal([ModelTokenizers.Gpt2().CountTokens(" short"), 15], masks);
        Assert.Equal(16, batch.InputIds.shape[1]);

        Assert.Throws<InvalidOperationException>(() => ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { MaxLength = 16, OverlongResponse = OverlongResponsePolicy.Throw }));
    }

    [Fact]
    public void Prompt_is_cut_from_the_left_and_padding_uses_end_of_text()
    {
        string query = "### Instruction:\n" + string.Join(' ', Enumerable.Range(0, 30).Select(i => "w" + i)) + "\n\n### Response:";
        var ds = AlignmentDataset.FromRecords([new AlignmentRecord(query, [" yes", " no thanks, really"], [7, 1], ["", ""])]);
        var batcher = ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { MaxLength = 12 });
        Assert.Equal(50256, batcher.PadTokenId);
        Assert.Equal(2, batcher.TruncatedPrompts);
        using var batch = batcher.Batches().Single();
        AssertRowMatches(batch, 0, query, " yes", 7, 12, 50256);
        AssertRowMatches(batch, 1, query, " no thanks, really", 1, 12, 50256);
        Assert.Equal(torch.ScalarType.Int64, batch.InputIds.dtype);
        Assert.Equal(torch.ScalarType.Bool, batch.LossMask.dtype);
        Assert.Equal(torch.ScalarType.Float32, batch.Ratings.dtype);
        Assert.Equal(new long[] { 0, 0 }, batch.Groups.data<long>().ToArray());
    }
}
