namespace StableAlignment.Core.Data;

/// <summary>
/// One record of the released Stable Alignment data: a rendered query with its rated responses.
/// <c>Scores[i]</c> and <c>Models[i]</c> belong to <c>Responses[i]</c>.
/// </summary>
public sealed class AlignmentRecord
{
    /// <summary>Creates a record; the three lists must have the same length.</summary>
    /// <param name="query">The rendered prompt (not blank).</param>
    /// <param name="responses">The responses (none blank).</param>
    /// <param name="scores">The rating of each response.</param>
    /// <param name="models">The model of each response (empty strings when unknown).</param>
    /// <exception cref="ArgumentException">The lists differ in length, or the query or a response is empty.</exception>
    public AlignmentRecord(string query, IReadOnlyList<string> responses, IReadOnlyList<double> scores, IReadOnlyList<string> models)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(responses);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(models);
        if (string.IsNullOrWhiteSpace(query))
            throw new ArgumentException("The query is empty.", nameof(query));
        if (scores.Count != responses.Count)
            throw new ArgumentException($"{responses.Count} responses but {scores.Count} scores.", nameof(scores));
        if (models.Count != responses.Count)
            throw new ArgumentException($"{responses.Count} responses but {models.Count} models.", nameof(models));
        for (int i = 0; i < responses.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(responses[i]))
                throw new ArgumentException($"Response {i} is empty.", nameof(responses));
        }
        Query = query;
        Responses = responses;
        Scores = scores;
        Models = models;
    }

    /// <summary>The rendered prompt.</summary>
    public string Query { get; }

    /// <summary>The responses to <see cref="Query"/>.</summary>
    public IReadOnlyList<string> Responses { get; }

    /// <summary>The rating of each response.</summary>
    public IReadOnlyList<double> Scores { get; }

    /// <summary>The model that wrote each response (empty when unknown).</summary>
    public IReadOnlyList<string> Models { get; }

    /// <summary>Whether two records hold the same query, responses, scores and models, in the same order.</summary>
    /// <param name="other">The record to compare with.</param>
    /// <returns><see langword="true"/> when they are equal field by field.</returns>
    public bool ContentEquals(AlignmentRecord? other) =>
        other is not null && Query == other.Query && Responses.SequenceEqual(other.Responses, StringComparer.Ordinal)
        && Scores.SequenceEqual(other.Scores) && Models.SequenceEqual(other.Models, StringComparer.Ordinal);
}
