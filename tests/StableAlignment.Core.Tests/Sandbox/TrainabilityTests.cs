using System.Text.RegularExpressions;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

/// <summary>
/// The offline society must produce data a small model can learn from: a bag-of-words naive Bayes model trained on
/// the imitation pairs (answer, observer rating) of some questions must rank answers to *other* questions the way
/// the observers do.
/// </summary>
public partial class TrainabilityTests
{
    [GeneratedRegex("[a-z']+")]
    private static partial Regex Word();

    [Fact]
    public async Task A_bag_of_words_model_learns_to_prefer_higher_rated_answers_on_held_out_questions()
    {
        using var dir = new TempFolder();
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small(grid: 6) with { PeersPerInteraction = 4 });
        await sandbox.RunAsync(6, dir.File("log.db"));
        var samples = SandboxLog.ReadRecords(dir.File("log.db"))
            .SelectMany(r => new[] { (r.Question, Text: r.Draft, Rating: r.DraftAlignment), (r.Question, Text: r.Revision, Rating: r.RevisionAlignment) })
            .Where(s => s.Rating.HasValue).Select(s => (s.Question, s.Text, Rating: s.Rating!.Value)).ToList();
        // Hold out whole questions: nothing about a test question is seen in training.
        var questions = samples.Select(s => s.Question).Distinct().Order(StringComparer.Ordinal).ToList();
        var heldOut = questions.Where((_, i) => i % 3 == 0).ToHashSet();
        var train = samples.Where(s => !heldOut.Contains(s.Question)).ToList();
        var test = samples.Where(s => heldOut.Contains(s.Question)).ToList();

        // Naive Bayes, good (rating >= 5) vs bad (rating <= 3), Laplace smoothing.
        var counts = new Dictionary<string, double[]>();
        var totals = new double[2];
        foreach (var s in train.Where(s => s.Rating is >= 5 or <= 3))
        {
            int c = s.Rating >= 5 ? 1 : 0;
            foreach (Match m in Word().Matches(s.Text.ToLowerInvariant()))
            {
                if (!counts.TryGetValue(m.Value, out var v)) counts[m.Value] = v = new double[2];
                v[c]++;
                totals[c]++;
            }
        }
        double Score(string text) => Word().Matches(text.ToLowerInvariant()).Sum(m =>
        {
            var v = counts.GetValueOrDefault(m.Value, [0, 0]);
            return Math.Log((v[1] + 1) / (totals[1] + counts.Count)) - Math.Log((v[0] + 1) / (totals[0] + counts.Count));
        });

        int agree = 0, pairs = 0;
        // Every held-out pair whose observer ratings differ by 2 or more (each question appears about once per run).
        for (int i = 0; i < test.Count; i++)
        {
            for (int j = i + 1; j < test.Count; j++)
            {
                if (Math.Abs(test[i].Rating - test[j].Rating) < 2) continue;
                pairs++;
                if (Score(test[i].Text) > Score(test[j].Text) == test[i].Rating > test[j].Rating) agree++;
            }
        }
        Assert.True(pairs > 100, $"only {pairs} held-out pairs");
        double accuracy = agree / (double)pairs;
        Assert.True(accuracy > 0.9, $"held-out pairwise accuracy {accuracy:P1} over {pairs} pairs");
    }
}
