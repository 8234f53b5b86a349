using StableAlignment.Sandbox.Orleans;

namespace StableAlignment.Core.Tests.Plugins.Orleans;

/// <summary>The coordinator's options name what is wrong, and the shared log's address never repeats its password.</summary>
public sealed class OrleansRunOptionsTests
{
    [Theory]
    [InlineData("http://user:s3cret@db:5432/runs", "postgres://")]
    [InlineData("postgres://user:s3cret@db:5432/", "names no database")]
    public void A_shared_log_that_is_not_a_postgres_address_is_named_without_its_password(string address, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => new OrleansRunOptions { SharedLog = address }.Validate());
        Assert.StartsWith("OrleansRunOptions.SharedLog:", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("run one")]
    [InlineData("run/1")]
    public void A_run_name_outside_letters_digits_dots_underscores_and_dashes_is_refused(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new OrleansRunOptions { RunName = name }.Validate());
        Assert.StartsWith("OrleansRunOptions.RunName:", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{name}'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_postgres_address_and_a_plain_run_name_are_valid()
    {
        var options = new OrleansRunOptions { SharedLog = "postgresql://user:pw@db.internal:6543/runs", RunName = "wave-2.seed_11" };
        Assert.Same(options, options.Validate());
        Assert.Throws<ArgumentException>(() => (options with { RunName = new string('a', 129) }).Validate());
    }
}
