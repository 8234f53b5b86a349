namespace StableAlignment.Core.Serialization;

/// <summary>
/// How error messages quote text that came from a user's files or a server: on one line and at most
/// <see cref="MaxQuoted"/> characters, so a 400 KB header line or an HTML error page never floods a console.
/// </summary>
internal static class UserText
{
    /// <summary>The most characters of user data an error message quotes.</summary>
    public const int MaxQuoted = 200;

    /// <summary><paramref name="text"/> on one line, cut to <paramref name="max"/> characters with an ellipsis.</summary>
    public static string Excerpt(string? text, int max = MaxQuoted)
    {
        if (string.IsNullOrEmpty(text)) return "";
        string line = text.ReplaceLineEndings(" ");
        return line.Length <= max ? line : string.Concat(line.AsSpan(0, max - 3), "...");
    }

    /// <summary>Items joined with ", ", cut to <paramref name="max"/> characters in all.</summary>
    public static string ExcerptList(IEnumerable<string> items, int max = MaxQuoted) => Excerpt(string.Join(", ", items), max);
}
