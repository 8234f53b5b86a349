using System.Text.Json;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;

namespace StableAlignment.Core.Tests.Data;

public sealed class SharedDataTests : IDisposable
{
    private const string HhFile = "hh-harmless-dev.jsonl";
    private readonly TempFolder _dir = new("sa-hh-");

    public void Dispose() => _dir.Dispose();

    // HH-RLHF pairs as alignment records: the shared dialogue is the query, the chosen reply is rated 7, the rejected 1.
    private static List<AlignmentRecord> HhRecords(int count)
    {
        const string Turn = "\n\nAssistant:";
        var records = new List<AlignmentRecord>();
        foreach (var line in File.ReadLines(SharedData.PathOf(HhFile)).Take(count))
        {
            using var doc = JsonDocument.Parse(line);
            string chosen = doc.RootElement.GetProperty("chosen").GetString()!;
            string rejected = doc.RootElement.GetProperty("rejected").GetString()!;
            int c = chosen.LastIndexOf(Turn, StringComparison.Ordinal), r = rejected.LastIndexOf(Turn, StringComparison.Ordinal);
            if (c < 0 || r < 0 || chosen[..c] != rejected[..r])
                continue;
            string good = chosen[(c + Turn.Length)..], bad = rejected[(r + Turn.Length)..];
            if (string.IsNullOrWhiteSpace(good) || string.IsNullOrWhiteSpace(bad) || good == bad
                || ModelTokenizers.Gpt2().CountTokens(good) > 250 || ModelTokenizers.Gpt2().CountTokens(bad) > 250)
                continue;
            records.Add(new AlignmentRecord(PromptTemplate.Alpaca.Render(chosen[..c].Trim(), ""), [good, bad], [7, 1], ["hh", "hh"]));
        }
        return records;
    }

    [SharedDataFact(HhFile)]
    public async Task Real_dialogues_round_trip_and_batch_consistently()
    {
        var records = HhRecords(60);
        Assert.True(records.Count > 30, $"only {records.Count} usable pairs");
        string path = _dir.File("hh.json");
        await AlignmentDataset.FromRecords(records).SaveAsync(path);
        var ds = await AlignmentDataset.LoadAsync(path);
        Assert.All(records.Zip(ds.Records), p => Assert.True(p.First.ContentEquals(p.Second)));

        const int MaxLength = 256; // long dialogues get their prompt cut from the left
        var batcher = ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { MaxLength = MaxLength, GroupsPerBatch = 6 });
        var byQuery = ds.Records.ToDictionary(r => r.Query);
        foreach (var plan in batcher.Plan(0))
        {
            using var batch = batcher.Build(plan);
            var rows = plan.SelectMany(g => g).ToList();
            for (int i = 0; i < rows.Count; i++)
            {
                var record = ds.Records[rows[i].Group];
                // Without skipped responses, kept-response indices are the record's own.
                Assert.Equal(0, batcher.SkippedResponses);
                PreferenceBatcherTests.AssertRowMatches(batch, i, record.Query, record.Responses[rows[i].Response],
                    record.Scores[rows[i].Response], MaxLength, batcher.PadTokenId);
            }
            // The chosen (best-rated) reply is always in its group.
            Assert.All(plan, g => Assert.Equal(0, g[0].Response));
        }
    }
}
