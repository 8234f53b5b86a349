namespace StableAlignment.Core.Data;

/// <summary>How responses are grouped into the loss's groups.</summary>
public enum BatchGrouping
{
    /// <summary>
    /// One group per query with up to <see cref="PreferenceBatchOptions.ResponsesPerQuery"/> responses: the best-rated
    /// always, the rest drawn uniformly without replacement from the others (a fresh seeded draw each epoch).
    /// </summary>
    ByQuery,

    /// <summary>Every response is its own group (plain SFT over all samples, as in stage 2 self-critic training).</summary>
    EachResponse,
}

/// <summary>What happens to a response that does not fit <see cref="PreferenceBatchOptions.MaxLength"/> with one prompt token.</summary>
public enum OverlongResponsePolicy
{
    /// <summary>Leave the response out and count it in <see cref="PreferenceBatcher.SkippedResponses"/> (default).</summary>
    Skip,

    /// <summary>Keep the last prompt token and the first <c>MaxLength - 1</c> response tokens.</summary>
    Truncate,

    /// <summary>Throw an <see cref="InvalidOperationException"/> naming the query and response.</summary>
    Throw,
}

/// <summary>
/// How an <see cref="AlignmentDataset"/> is tokenized and cut into <see cref="PreferenceBatch"/>es.
/// </summary>
/// <remarks>
/// Truncation keeps the response whole and cuts the prompt from the left (its oldest tokens go first), because the
/// loss is computed on the response and the end of the prompt is what the response follows. At least one prompt
/// token is always kept so the first response token has a position that predicts it; a response longer than
/// <c>MaxLength - 1</c> tokens is handled by <see cref="OverlongResponse"/>.
/// </remarks>
public sealed record PreferenceBatchOptions
{
    /// <summary>Maximum tokens per row (prompt + response). Default 512.</summary>
    public int MaxLength { get; init; } = 512;

    /// <summary>How rows are grouped. Default <see cref="BatchGrouping.ByQuery"/>.</summary>
    public BatchGrouping Grouping { get; init; } = BatchGrouping.ByQuery;

    /// <summary>Responses per query in <see cref="BatchGrouping.ByQuery"/> (k; 3 in the reference). Default 3.</summary>
    public int ResponsesPerQuery { get; init; } = 3;

    /// <summary>Groups per batch (queries, or rows with <see cref="BatchGrouping.EachResponse"/>). Default 8.</summary>
    public int GroupsPerBatch { get; init; } = 8;

    /// <summary>
    /// Sort groups by length before cutting batches (and shuffle the batches), so that rows of a batch have similar
    /// lengths and little padding. Default <see langword="true"/>.
    /// </summary>
    public bool BucketByLength { get; init; } = true;

    /// <summary>Seed of response choice and batch order (combined with the epoch). Default 42.</summary>
    public int Seed { get; init; } = 42;


    /// <summary>Padding id in <see cref="PreferenceBatch.InputIds"/>; <see langword="null"/> uses the tokenizer's
    /// <c>&lt;|endoftext|&gt;</c> when it has one, else 0. Padding never enters the loss.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>
    /// Ends every response with the tokenizer's end-of-text token, so that a trained model learns where an answer ends
    /// and stops generating there (Alpaca's fine-tuning code appends the end-of-sequence token; the Stable Alignment
    /// reference does not). The token is part of the response: it is in the loss and in each response's NLL. Default
    /// <see langword="false"/>, as the reference. The tokenizer must have an end-of-text token.
    /// </summary>
    public bool AppendEndOfText { get; init; }

    /// <summary>What happens to responses too long to fit. Default <see cref="OverlongResponsePolicy.Skip"/>.</summary>
    public OverlongResponsePolicy OverlongResponse { get; init; } = OverlongResponsePolicy.Skip;

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public PreferenceBatchOptions Validate()
    {
        if (MaxLength < 2)
            throw new ArgumentException($"MaxLength must be at least 2 (one prompt and one response token), got {MaxLength}.", nameof(MaxLength));
        if (!Enum.IsDefined(Grouping))
            throw new ArgumentException($"Unknown grouping {(int)Grouping}.", nameof(Grouping));
        if (ResponsesPerQuery < 1)
            throw new ArgumentException($"ResponsesPerQuery must be at least 1, got {ResponsesPerQuery}.", nameof(ResponsesPerQuery));
        if (GroupsPerBatch < 1)
            throw new ArgumentException($"GroupsPerBatch must be at least 1, got {GroupsPerBatch}.", nameof(GroupsPerBatch));
        if (PadTokenId is < 0)
            throw new ArgumentException($"PadTokenId must not be negative, got {PadTokenId}.", nameof(PadTokenId));
        if (!Enum.IsDefined(OverlongResponse))
            throw new ArgumentException($"Unknown overlong-response policy {(int)OverlongResponse}.", nameof(OverlongResponse));
        return this;
    }
}
