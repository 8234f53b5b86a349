using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using StableAlignment.Core.Data;

namespace StableAlignment.Core.Tests.Data;

public class SplitTests
{
    // Random datasets drawn from a small pool of queries, so the same query often appears in several records.
    [Property(MaxTest = 300)]
    public Property No_query_is_on_both_sides_and_nothing_is_lost(byte[] queryIds, int seed, byte fractionPercent)
    {
        var records = (queryIds ?? []).Select((q, i) => new AlignmentRecord("query " + (q % 17), ["response " + i], [(i % 7) + 1], [""])).ToList();
        double fraction = Math.Min(fractionPercent, (byte)100) / 100.0;
        var (train, validation) = AlignmentDataset.FromRecords(records).Split(fraction, seed);

        var trainQueries = train.Records.Select(r => r.Query).ToHashSet();
        var validationQueries = validation.Records.Select(r => r.Query).ToHashSet();
        int distinct = records.Select(r => r.Query).Distinct().Count();
        bool disjoint = !trainQueries.Overlaps(validationQueries);
        bool complete = train.Records.Concat(validation.Records).OrderBy(r => r.Responses[0], StringComparer.Ordinal)
            .SequenceEqual(records.OrderBy(r => r.Responses[0], StringComparer.Ordinal));
        bool sized = validationQueries.Count == (int)Math.Round(fraction * distinct);
        return (disjoint && complete && sized).Label($"disjoint={disjoint} complete={complete} sized={sized}");
    }

    [Fact]
    public void Split_is_deterministic_in_the_seed()
    {
        var records = Enumerable.Range(0, 40).Select(i => new AlignmentRecord("q" + i, ["r"], [3], [""])).ToList();
        var ds = AlignmentDataset.FromRecords(records);
        var a = ds.Split(0.25, 5).Validation.Records.Select(r => r.Query).ToList();
        var b = ds.Split(0.25, 5).Validation.Records.Select(r => r.Query).ToList();
        var c = ds.Split(0.25, 6).Validation.Records.Select(r => r.Query).ToList();
        Assert.Equal(10, a.Count);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Split_rejects_a_fraction_outside_0_1() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => AlignmentDataset.FromRecords([]).Split(1.5));
}
