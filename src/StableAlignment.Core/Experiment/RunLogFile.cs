using System.Globalization;
using Microsoft.Extensions.Logging;

namespace StableAlignment.Core.Experiment;

/// <summary>
/// The logger factory the experiment's components get while a step runs: every message of level Information and above
/// is appended to <see cref="RunFolder.LogFile"/> (one line each, UTC time, level, category, message and the
/// exception's type and message; no stack trace), and every message also goes to the host's factory, if any. The file
/// is created at the first message, so a step that logs nothing leaves none. Prompts, replies and keys are never logged
/// at these levels by the pipeline or the sandbox.
/// </summary>
internal sealed class RunLogFile : ILoggerFactory
{
    private readonly Lock _lock = new();
    private readonly string _path;
    private readonly ILoggerFactory? _host;
    private readonly TimeProvider _time;
    private StreamWriter? _writer;
    private bool _failed;

    private RunLogFile(string path, ILoggerFactory? host, TimeProvider? time)
    {
        _path = path;
        _host = host;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The log of <paramref name="path"/> (created at its first line), forwarding to <paramref name="host"/> too.</summary>
    public static RunLogFile Open(string path, ILoggerFactory? host, TimeProvider? time = null) => new(path, host, time);

    public ILogger CreateLogger(string categoryName) => new FileLogger(this, categoryName, _host?.CreateLogger(categoryName));

    public void AddProvider(ILoggerProvider provider) => _host?.AddProvider(provider);

    private void Write(LogLevel level, string category, string message, Exception? exception)
    {
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{_time.GetUtcNow():yyyy-MM-ddTHH:mm:ss.fffZ} {Level(level)} {category}: {message}{(exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")}");
        lock (_lock)
        {
            if (_failed) return;
            try
            {
                _writer ??= new StreamWriter(new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
                _writer.WriteLine(line.ReplaceLineEndings(" "));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A full disk must not turn a log line into the step's failure; the step meets the disk itself.
                _failed = true;
            }
        }
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        LogLevel.Critical => "crit",
        _ => level.ToString().ToLowerInvariant(),
    };

    public void Dispose()
    {
        lock (_lock)
        {
            _writer?.Dispose();
            _writer = null;
            _failed = true;
        }
    }

    private sealed class FileLogger(RunLogFile file, string category, ILogger? host) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => host?.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information && logLevel != LogLevel.None || host?.IsEnabled(logLevel) == true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Information && logLevel != LogLevel.None) file.Write(logLevel, category, formatter(state, exception), exception);
            if (host?.IsEnabled(logLevel) == true) host.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
