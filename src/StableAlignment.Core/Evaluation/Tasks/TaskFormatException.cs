namespace StableAlignment.Core.Evaluation;

/// <summary>A task file could not be read: the message names the file, the line and the problem (which quotes at most a few hundred characters of the file).</summary>
public sealed class TaskFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="source">The file (or other source name) that was being read.</param>
    /// <param name="line">The 1-based line where the problem starts (0 when it concerns the whole file).</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public TaskFormatException(string source, int line, string problem, Exception? inner = null)
        : base(line > 0 ? $"{source}:{line}: {Quoted(problem)}" : $"{source}: {Quoted(problem)}", inner)
    {
        SourceName = source;
        Line = line;
        Problem = problem;
    }

    // The problem quotes the file's own text (a header, a field); a 400 KB line must not become a 400 KB message.
    private static string Quoted(string problem) => Serialization.UserText.Excerpt(problem, 2 * Serialization.UserText.MaxQuoted);

    /// <summary>The file or source name.</summary>
    public string SourceName { get; }

    /// <summary>The 1-based line, or 0 for the whole file.</summary>
    public int Line { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    /// <summary>Creates the exception with no details (for serializers and analyzers).</summary>
    public TaskFormatException() : this("(unknown)", 0, "The task file is malformed.")
    {
    }

    /// <summary>Creates the exception from a message.</summary>
    /// <param name="message">The message.</param>
    public TaskFormatException(string message) : this("(unknown)", 0, message)
    {
    }

    /// <summary>Creates the exception from a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public TaskFormatException(string message, Exception innerException) : this("(unknown)", 0, message, innerException)
    {
    }
}
