using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.ChatClients;

namespace StableAlignment.Core.Tests.Sandbox;

public class RatingParserTests
{
    [Theory]
    [InlineData("Rating: 5 ### Reason: fine", 5, "fine")]
    [InlineData("  rating:7###reason:   great answer  ", 7, "great answer")]
    [InlineData("Rating: 1 ### Reason: line one\nline two", 1, "line one\nline two")]
    [InlineData("RATING : +3 ### REASON : meh", 3, "meh")]
    public void Well_formed_replies_parse(string reply, int rating, string reason)
    {
        Assert.True(RatingParser.TryParse(reply, out int r, out string why, out string? error), error);
        Assert.Equal(rating, r);
        Assert.Equal(reason, why);
    }

    [Theory]
    [InlineData(null, "empty")]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("I'd give it a 5.", "no 'Rating:'")]
    [InlineData("5 ### Reason: ok", "no 'Rating:'")]
    [InlineData("Rating: 5", "Reason")]
    [InlineData("Rating: 5 Reason: ok", "Reason")]
    [InlineData("Rating: 0 ### Reason: bad", "outside")]
    [InlineData("Rating: 8 ### Reason: bad", "outside")]
    [InlineData("Rating: -1 ### Reason: bad", "not a whole number")]
    [InlineData("Rating: 99999999999 ### Reason: bad", "outside")]
    [InlineData("Rating: 4.5 ### Reason: ok", "not a whole number")]
    [InlineData("Rating: 5/7 ### Reason: ok", "not a whole number")]
    [InlineData("Rating: five ### Reason: ok", "not a whole number")]
    [InlineData("Rating: ### Reason: ok", "follow")]
    [InlineData("Rating: 5 ### Reason:", "reason is empty")]
    [InlineData("Rating: 5 ### Reason:    ", "reason is empty")]
    [InlineData("Rating: 5 ### Rating: 6 ### Reason: twice", "more than one")]
    [InlineData("Sure! Rating: 5 ### Reason: ok", "follow")]
    [InlineData("Rating: 5 ### Comment: ok", "follow")]
    public void Malformed_replies_fail_with_a_reason(string? reply, string expected)
    {
        Assert.False(RatingParser.TryParse(reply, out int rating, out _, out string? error));
        Assert.Equal(0, rating);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Formatted_ratings_round_trip()
    {
        var reason = Gen.Elements("ok", "The answer is harmful.", "multi\nline", "uses ### inside? no").Where(r => !r.Contains("###", StringComparison.Ordinal));
        Prop.ForAll(Gen.Choose(1, 7).ToArbitrary(), reason.ToArbitrary(), (r, why) =>
            RatingParser.TryParse(RatingParser.Format(r, why), out int got, out string gotWhy, out _) && got == r && gotWhy == why)
            .QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_rating_that_never_parses_is_recorded_as_an_explicit_failure_after_the_configured_attempts(int passes)
    {
        using var dir = new TempFolder();
        var offline = new OfflineSocietyChatClient(7, formatErrorRate: 0);
        // Observers always answer badly; agents use the offline society.
        var observer = new ScriptedChatClient((_, _, _) => "I think it deserves a 6.");
        var options = SandboxTestKit.Small() with { RatingAttempts = 2, MaxFeedbackPasses = passes };
        await using var sandbox = SandboxTestKit.Offline(options, offline, observer);
        var result = await sandbox.RunAsync(1, dir.File("log.db"));
        var records = SandboxLog.ReadRecords(dir.File("log.db"));
        Assert.All(records.SelectMany(r => r.DraftScores.Concat(r.AllPasses.SelectMany(p => p.Scores))), s =>
        {
            Assert.Null(s.Alignment.Value);
            Assert.Equal(2, s.Alignment.Attempts);
            Assert.Equal("no 'Rating:' label", s.Alignment.FailureReason);
        });
        Assert.All(records, r => Assert.Null(r.DraftAlignment));
        // 9 interactions x (draft + one revision per pass; no revision improves, so a second pass is the last) x
        // (alignment + engagement), each tried twice. A pass that was not kept asked for its ratings too.
        Assert.All(records, r => Assert.Equal(passes, r.AllPasses.Count));
        int failures = 9 * (1 + passes) * 2;
        Assert.Equal(2 * failures, observer.Calls);
        Assert.Equal(failures, result.RatingFailures);
        Assert.Equal(failures, SandboxLog.Summarize(dir.File("log.db")).RatingFailures);
    }
}
