namespace StableAlignment.Core.Sandbox;

/// <summary>
/// A sandbox log that cannot be used as it is: not a SQLite file, not a sandbox log, corrupted, or written by a world
/// with other options or other models (so resuming it would mix two experiments). The log is never repaired or
/// overwritten; the message names the file, what is wrong and how to start fresh.
/// </summary>
public sealed class SandboxLogException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SandboxLogException() { }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public SandboxLogException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public SandboxLogException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception for a log file.</summary>
    /// <param name="logPath">The log.</param>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="innerException">The cause, if any.</param>
    public SandboxLogException(string logPath, string message, Exception? innerException) : base(message, innerException) => LogPath = logPath;

    /// <summary>The log file.</summary>
    public string? LogPath { get; }
}
