namespace StableAlignment.Core.Data;

/// <summary>The on-disk layouts of alignment records.</summary>
public enum AlignmentFileFormat
{
    /// <summary>Pick by extension when reading (<c>.jsonl</c>/<c>.ndjson</c> are JSON Lines) or by the first non-blank byte.</summary>
    Auto,

    /// <summary>The released layout: one JSON array of <c>{"query", "responses", "scores", "models"}</c> objects.</summary>
    JsonArray,

    /// <summary>The same objects, one per line.</summary>
    JsonLines,
}

/// <summary>How alignment files are read and checked.</summary>
public sealed record AlignmentReadOptions
{
    /// <summary>The file layout. Default <see cref="AlignmentFileFormat.Auto"/>.</summary>
    public AlignmentFileFormat Format { get; init; } = AlignmentFileFormat.Auto;

    /// <summary>
    /// When <see langword="true"/>, a bad record is skipped and reported in <see cref="AlignmentDataset.LoadReport"/>
    /// instead of throwing. Malformed JSON inside a JSON array cannot be skipped (the array's structure is lost) and
    /// still throws; in JSON Lines the bad line is skipped. Default <see langword="false"/>.
    /// </summary>
    public bool Lenient { get; init; }

    /// <summary>The lowest valid score. Default 1.</summary>
    public double MinScore { get; init; } = 1;

    /// <summary>The highest valid score. Default 7.</summary>
    public double MaxScore { get; init; } = 7;

    /// <summary>How many problems the load report keeps verbatim (all are counted). Default 100.</summary>
    public int MaxReportedIssues { get; init; } = 100;

    /// <summary>Size of the read buffer in bytes (it grows for larger records). Default 1 MiB.</summary>
    public int BufferSize { get; init; } = 1 << 20;

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public AlignmentReadOptions Validate()
    {
        if (!Enum.IsDefined(Format))
            throw new ArgumentException($"Unknown format {(int)Format}.", nameof(Format));
        if (!double.IsFinite(MinScore) || !double.IsFinite(MaxScore) || MinScore > MaxScore)
            throw new ArgumentException($"MinScore ({MinScore}) must be finite and not above MaxScore ({MaxScore}).", nameof(MinScore));
        if (MaxReportedIssues < 0)
            throw new ArgumentException($"MaxReportedIssues must not be negative, got {MaxReportedIssues}.", nameof(MaxReportedIssues));
        if (BufferSize < 16)
            throw new ArgumentException($"BufferSize must be at least 16 bytes, got {BufferSize}.", nameof(BufferSize));
        return this;
    }
}

/// <summary>Where in a file a record or a problem lies.</summary>
/// <param name="FilePath">The file.</param>
/// <param name="RecordIndex">The record's position in the file, from 0.</param>
/// <param name="Line">The 1-based line of the problem.</param>
/// <param name="ByteOffset">The byte offset of the problem from the start of the file.</param>
/// <param name="Problem">What was wrong.</param>
public sealed record AlignmentDataIssue(string FilePath, long RecordIndex, long Line, long ByteOffset, string Problem)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{FilePath}: record {RecordIndex} (line {Line}, byte {ByteOffset}): {Serialization.UserText.Excerpt(Problem, 2 * Serialization.UserText.MaxQuoted)}";
}

/// <summary>Thrown when an alignment file holds a bad record; the message names file, record, line, byte offset and problem.</summary>
public sealed class AlignmentDataException : Exception
{
    /// <summary>Creates an exception for an issue.</summary>
    /// <param name="issue">Where and what.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public AlignmentDataException(AlignmentDataIssue issue, Exception? inner = null)
        : base(issue?.ToString(), inner) => Issue = issue ?? throw new ArgumentNullException(nameof(issue));

    /// <summary>Creates an exception with a message only.</summary>
    public AlignmentDataException() : this(new AlignmentDataIssue("", -1, 0, 0, "unknown problem")) { }

    /// <summary>Creates an exception with a message only.</summary>
    /// <param name="message">The message.</param>
    public AlignmentDataException(string message) : this(new AlignmentDataIssue("", -1, 0, 0, message)) { }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public AlignmentDataException(string message, Exception innerException)
        : this(new AlignmentDataIssue("", -1, 0, 0, message), innerException) { }

    /// <summary>Where and what went wrong.</summary>
    public AlignmentDataIssue Issue { get; }
}

/// <summary>What a load found: the records read and, in lenient mode, those skipped and why.</summary>
public sealed class AlignmentLoadReport
{
    internal AlignmentLoadReport(long recordsRead, long recordsSkipped, IReadOnlyList<AlignmentDataIssue> issues)
    {
        RecordsRead = recordsRead;
        RecordsSkipped = recordsSkipped;
        Issues = issues;
    }

    /// <summary>How many records were accepted.</summary>
    public long RecordsRead { get; }

    /// <summary>How many records were skipped (lenient mode only).</summary>
    public long RecordsSkipped { get; }

    /// <summary>The first problems found (up to <see cref="AlignmentReadOptions.MaxReportedIssues"/>).</summary>
    public IReadOnlyList<AlignmentDataIssue> Issues { get; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{RecordsRead} records read, {RecordsSkipped} skipped" + string.Concat(Issues.Select(i => "\n  " + i));
}
