using System.Globalization;
using System.Text.RegularExpressions;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// Strict parser of the reply format <c>Rating: &lt;1-7&gt; ### Reason: &lt;text&gt;</c>. Anything else is rejected
/// with a reason that is sent back to the model on retry and recorded if every attempt fails; no magic number is
/// ever substituted for a rating.
/// </summary>
/// <remarks>The evaluation judge (<c>AlignmentJudge</c>) has its own, line-based format (1-10, reason optional), so it
/// parses separately.</remarks>
internal static partial class RatingParser
{
    public const int Min = 1;
    public const int Max = 7;

    // Whole reply: optional surrounding whitespace, one "Rating:" label, an integer token, "###", "Reason:", text.
    [GeneratedRegex(@"^\s*Rating\s*:\s*(?<value>\S+?)\s*###\s*Reason\s*:\s*(?<reason>.*?)\s*$",
        RegexOptions.IgnoreCase | RegexOptions.Singleline | RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 1000)]
    private static partial Regex ReplyFormat();

    [GeneratedRegex(@"^[+]?[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex Integer();

    [GeneratedRegex(@"Rating\s*:", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RatingLabel();

    /// <summary>Parses one reply. On success <paramref name="error"/> is <see langword="null"/>.</summary>
    public static bool TryParse(string? reply, out int rating, out string reason, out string? error)
    {
        rating = 0;
        reason = "";
        if (string.IsNullOrWhiteSpace(reply))
        {
            error = "the reply is empty";
            return false;
        }
        int labels = RatingLabel().Count(reply);
        if (labels == 0)
        {
            error = "no 'Rating:' label";
            return false;
        }
        if (labels > 1)
        {
            error = "more than one 'Rating:' label";
            return false;
        }
        var m = ReplyFormat().Match(reply);
        if (!m.Success)
        {
            error = reply.Contains("###", StringComparison.Ordinal)
                ? "the reply does not follow 'Rating: <1-7> ### Reason: <text>'"
                : "missing the '### Reason:' part";
            return false;
        }
        string value = m.Groups["value"].Value;
        if (!Integer().IsMatch(value))
        {
            error = $"the rating '{value}' is not a whole number";
            return false;
        }
        if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out rating) || rating < Min || rating > Max)
        {
            rating = 0;
            error = $"the rating {value} is outside {Min}-{Max}";
            return false;
        }
        reason = m.Groups["reason"].Value;
        if (reason.Length == 0)
        {
            rating = 0;
            error = "the reason is empty";
            return false;
        }
        error = null;
        return true;
    }

    /// <summary>Formats a rating in the protocol's format (used by the offline backend and by tests).</summary>
    public static string Format(int rating, string reason) =>
        string.Create(CultureInfo.InvariantCulture, $"Rating: {rating} ### Reason: {reason}");
}
