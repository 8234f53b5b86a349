using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Training;

public sealed class BatchWindowTests
{
    private static long[] Ids(StableAlignment.Core.Data.PreferenceBatch b) => b.InputIds.contiguous().data<long>().ToArray();

    [Theory]
    [InlineData(2, 5, 0)]
    [InlineData(2, 5, 1)]
    [InlineData(0, 3, 2)]
    [InlineData(4, 1, 0)]
    public void A_window_is_a_slice_of_the_stream_of_the_inner_epochs(int first, int count, int epoch)
    {
        var inner = new SyntheticPreferenceSource(tag: 3, batches: 3, seed: 5);
        var window = new BatchWindow(inner, first, count);
        Assert.Equal(count, window.Count);
        var actual = window.Batches(epoch).Select(b => { using (b) return Ids(b); }).ToList();
        var expected = Enumerable.Range(first + epoch * count, count)
            .Select(p => { using var b = inner.Batches(p / 3).ElementAt(p % 3); return Ids(b); }).ToList();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Bad_windows_name_the_argument()
    {
        var inner = new SyntheticPreferenceSource(tag: 3, batches: 3);
        Assert.Equal("first", Assert.Throws<ArgumentException>(() => new BatchWindow(inner, -1, 2)).ParamName);
        Assert.Equal("count", Assert.Throws<ArgumentException>(() => new BatchWindow(inner, 0, 0)).ParamName);
        Assert.Equal("inner", Assert.Throws<ArgumentException>(() => new BatchWindow(new SyntheticPreferenceSource(tag: 3, batches: 0), 0, 1)).ParamName);
    }
}
