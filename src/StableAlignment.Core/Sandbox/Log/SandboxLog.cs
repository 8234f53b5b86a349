using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using StableAlignment.Core.Serialization;

namespace StableAlignment.Core.Sandbox;

/// <summary>A summary of a sandbox log.</summary>
/// <param name="Interactions">Logged interactions.</param>
/// <param name="CompletedRounds">Rounds whose every interaction is logged.</param>
/// <param name="RatingFailures">Ratings recorded as explicit failures.</param>
/// <param name="MemoryUpdates">Question-answer pairs added to agents' memories.</param>
/// <param name="TokensIn">Prompt tokens of the logged interactions.</param>
/// <param name="TokensOut">Completion tokens of the logged interactions.</param>
/// <param name="MeanDraftAlignment">Mean observer alignment of drafts (successful ratings only), or NaN.</param>
/// <param name="MeanRevisionAlignment">Mean observer alignment of revisions (successful ratings only), or NaN.</param>
public sealed record SandboxLogSummary(long Interactions, int CompletedRounds, long RatingFailures, long MemoryUpdates, long TokensIn,
    long TokensOut, double MeanDraftAlignment, double MeanRevisionAlignment);

/// <summary>
/// Reads and exports the durable SQLite log written by <see cref="ISandbox.RunAsync"/>: the records, for
/// AlignmentDataset, and the reference's per-agent JSON Lines files.
/// </summary>
public static class SandboxLog
{
    internal const string FormatVersion = "stable-alignment-sandbox-log/1";

    internal static readonly JsonSerializerOptions RecordJson = new() { WriteIndented = false };

    /// <summary>Every logged interaction, in schedule order (round, then agent).</summary>
    /// <exception cref="FileNotFoundException">There is no log at <paramref name="logPath"/>.</exception>
    /// <exception cref="SandboxLogException">The file is not a sandbox log, or a row is corrupted.</exception>
    public static IReadOnlyList<InteractionRecord> ReadRecords(string logPath) => Reading(logPath, () =>
    {
        using var connection = OpenExisting(logPath);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, record FROM interactions ORDER BY seq";
        using var reader = command.ExecuteReader();
        var records = new List<InteractionRecord>();
        while (reader.Read())
        {
            long seq = reader.GetInt64(0);
            try
            {
                records.Add(JsonSerializer.Deserialize<InteractionRecord>(reader.GetString(1), RecordJson)
                    ?? throw new JsonException("the row holds null"));
            }
            catch (Exception e) when (e is JsonException or InvalidCastException or NotSupportedException)
            {
                throw new SandboxLogException(logPath, $"Sandbox log '{logPath}' is corrupted: interaction {seq} is not a readable record ({UserText.Excerpt(e.Message)}). " +
                    "It was left as it is; simulate into a new run folder to start fresh.", e);
            }
        }
        return (IReadOnlyList<InteractionRecord>)records;
    });

    /// <summary>Counts and means over a log.</summary>
    /// <exception cref="FileNotFoundException">There is no log at <paramref name="logPath"/>.</exception>
    /// <exception cref="SandboxLogException">The file is not a sandbox log, or a row is corrupted.</exception>
    public static SandboxLogSummary Summarize(string logPath) => Reading(logPath, () =>
    {
        using var connection = OpenExisting(logPath);
        long Scalar(string sql)
        {
            using var c = connection.CreateCommand();
            c.CommandText = sql;
            return Convert.ToInt64(c.ExecuteScalar() ?? 0L, CultureInfo.InvariantCulture);
        }
        long interactions = Scalar("SELECT COUNT(*) FROM interactions");
        long perRound = Scalar("SELECT COALESCE((SELECT value FROM meta WHERE key = 'agents'), '0')");
        var records = ReadRecords(logPath);
        static double Mean(IEnumerable<double?> values)
        {
            var list = values.Where(v => v.HasValue).Select(v => v!.Value).ToList();
            return list.Count == 0 ? double.NaN : list.Average();
        }
        return new SandboxLogSummary(interactions, perRound == 0 ? 0 : (int)(interactions / perRound),
            Scalar("SELECT COUNT(*) FROM rating_failures"), Scalar("SELECT COUNT(*) FROM memory_updates"),
            Scalar("SELECT COALESCE(SUM(tokens_in), 0) FROM interactions"), Scalar("SELECT COALESCE(SUM(tokens_out), 0) FROM interactions"),
            Mean(records.Select(r => r.DraftAlignment)), Mean(records.Select(r => r.RevisionAlignment)));
    });

    /// <summary>Runs a read, turning SQLite's errors about the file into a <see cref="SandboxLogException"/> that names it.</summary>
    private static T Reading<T>(string logPath, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (SqliteException e)
        {
            throw NotALog(logPath, e);
        }
    }

    /// <summary>What to say about a file SQLite cannot use as a sandbox log.</summary>
    internal static SandboxLogException NotALog(string logPath, SqliteException e)
    {
        string what = e.SqliteErrorCode switch
        {
            26 => "is not a SQLite database",
            11 => "is a corrupted SQLite database",
            _ when File.Exists(logPath) && new FileInfo(logPath).Length == 0 => "is empty: no interaction was ever logged",
            _ when e.Message.Contains("no such table", StringComparison.Ordinal) => "is a SQLite database but not a sandbox log",
            _ => "cannot be read",
        };
        return new SandboxLogException(logPath,
            $"Sandbox log '{logPath}' {what} ({UserText.Excerpt(e.Message)}). It was left as it is; move it away or simulate into a new run folder to start fresh.", e);
    }

    /// <summary>
    /// Writes the log's records as the reference sandbox's per-agent JSON Lines files (<c>agent_{id}.jsonl</c>, records
    /// in round order; the fields are listed in docs/sandbox.md). A failed rating is written as <c>null</c> (the
    /// reference wrote the magic value 8 or -1).
    /// </summary>
    /// <param name="logPath">The SQLite log written by <see cref="ISandbox.RunAsync"/>.</param>
    /// <param name="outputDirectory">The output folder (created when missing).</param>
    /// <returns>The files written, in agent order.</returns>
    public static IReadOnlyList<string> ExportJsonLines(string logPath, string outputDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDirectory);
        return SandboxJsonLines.Write(ReadRecords(logPath), outputDirectory);
    }

    internal static SqliteConnection Open(string logPath, SqliteOpenMode mode)
    {
        // No pooling: closing the last connection checkpoints the WAL into the main file, so a finished log is one
        // self-contained file, and two runs with the same seed leave byte-identical files.
        var builder = new SqliteConnectionStringBuilder { DataSource = logPath, Mode = mode, Pooling = false };
        var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        return connection;
    }

    private static SqliteConnection OpenExisting(string logPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(logPath);
        if (!File.Exists(logPath)) throw new FileNotFoundException($"Sandbox log '{logPath}' does not exist.", logPath);
        return Open(logPath, SqliteOpenMode.ReadWrite);
    }
}

/// <summary>One logged interaction with what was committed beside it: the memory update and the token counts.</summary>
internal sealed record LoggedInteraction(long Seq, InteractionRecord Record, MemoryEntry? MemoryUpdate, long TokensIn, long TokensOut);

/// <summary>
/// Appends to the log: one transaction per completed interaction, holding the record, the memory update, the rating
/// failures and the token counts, so after a kill the log holds whole interactions only.
/// </summary>
internal sealed class SandboxLogWriter : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly string _logPath;

    private SandboxLogWriter(SqliteConnection connection, string logPath)
    {
        _connection = connection;
        _logPath = logPath;
    }

    /// <summary>Interactions in the log (always the schedule's prefix 0 .. Count-1).</summary>
    public long Count { get; private set; }

    public static SandboxLogWriter Open(string logPath, string fingerprint, int agentsPerRound)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(logPath);
        string? directory = Path.GetDirectoryName(Path.GetFullPath(logPath));
        if (directory is not null) Directory.CreateDirectory(directory);
        // An existing file must already be a sandbox log: the tables below are never created inside someone else's
        // database, and a corrupted file is reported, not repaired. An empty file is what SQLite creates before its first write.
        bool existing = File.Exists(logPath) && new FileInfo(logPath).Length > 0;
        SqliteConnection connection;
        try
        {
            connection = SandboxLog.Open(logPath, SqliteOpenMode.ReadWriteCreate);
        }
        catch (SqliteException e)
        {
            throw SandboxLog.NotALog(logPath, e);
        }
        try
        {
            if (existing) RequireSandboxLog(connection, logPath);
            Execute(connection, """
                PRAGMA journal_mode = WAL;
                PRAGMA synchronous = NORMAL;
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS interactions (
                    seq INTEGER PRIMARY KEY, round INTEGER NOT NULL, agent_id INTEGER NOT NULL, label TEXT NOT NULL,
                    record TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, UNIQUE (round, agent_id));
                CREATE TABLE IF NOT EXISTS memory_updates (
                    seq INTEGER PRIMARY KEY REFERENCES interactions (seq), agent_id INTEGER NOT NULL, round INTEGER NOT NULL,
                    question TEXT NOT NULL, answer TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS rating_failures (
                    seq INTEGER NOT NULL REFERENCES interactions (seq), ordinal INTEGER NOT NULL, kind TEXT NOT NULL,
                    rater INTEGER NOT NULL, pass INTEGER NOT NULL, failure TEXT NOT NULL, raw_reply TEXT NOT NULL, attempts INTEGER NOT NULL,
                    PRIMARY KEY (seq, ordinal));
                """);
            var writer = new SandboxLogWriter(connection, logPath);
            writer.CheckMeta(logPath, fingerprint, agentsPerRound);
            return writer;
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw (Exception?)Unwritable(logPath, e) ?? SandboxLog.NotALog(logPath, e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static void RequireSandboxLog(SqliteConnection connection, string logPath)
    {
        using var c = connection.CreateCommand();
        c.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'interactions')";
        if (Convert.ToInt64(c.ExecuteScalar(), CultureInfo.InvariantCulture) != 2)
        {
            throw new SandboxLogException(logPath,
                $"'{logPath}' is a SQLite database but not a sandbox log (it has no meta and interactions tables). It was left as it is; move it away or simulate into a new run folder.", null);
        }
    }

    /// <summary>A full disk or an I/O error while writing, as an <see cref="IOException"/> that names the log; null for other errors.</summary>
    internal static IOException? Unwritable(string logPath, SqliteException e) => e.SqliteErrorCode switch
    {
        13 => new IOException($"Cannot write the sandbox log '{logPath}': the disk is full ({UserText.Excerpt(e.Message)}). Every interaction committed before is kept; free some space and run again to resume.", e),
        10 => new IOException($"Cannot write the sandbox log '{logPath}' ({UserText.Excerpt(e.Message)}). Every interaction committed before is kept; run again to resume.", e),
        _ => null,
    };

    private void CheckMeta(string logPath, string fingerprint, int agentsPerRound)
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        using (var c = _connection.CreateCommand())
        {
            c.CommandText = "SELECT key, value FROM meta";
            using var r = c.ExecuteReader();
            while (r.Read()) meta[r.GetString(0)] = r.GetString(1);
        }
        if (meta.Count == 0)
        {
            using var tx = _connection.BeginTransaction();
            foreach (var (key, value) in new[]
            {
                ("format", SandboxLog.FormatVersion), ("fingerprint", fingerprint),
                ("agents", agentsPerRound.ToString(CultureInfo.InvariantCulture)),
            })
            {
                using var c = _connection.CreateCommand();
                c.Transaction = tx;
                c.CommandText = "INSERT INTO meta (key, value) VALUES ($k, $v)";
                c.Parameters.AddWithValue("$k", key);
                c.Parameters.AddWithValue("$v", value);
                c.ExecuteNonQuery();
            }
            tx.Commit();
        }
        else
        {
            if (!meta.TryGetValue("format", out string? format) || format != SandboxLog.FormatVersion)
            {
                throw new SandboxLogException(logPath,
                    $"Sandbox log '{logPath}' has format '{UserText.Excerpt(format)}', this version writes '{SandboxLog.FormatVersion}', so it cannot be resumed. It was left as it is; simulate into a new run folder to start fresh.", null);
            }
            string stored = meta.GetValueOrDefault("fingerprint", "");
            if (stored != fingerprint) throw Mismatch(logPath, stored, fingerprint);
        }
        using var count = _connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*), COALESCE(MAX(seq), -1) FROM interactions";
        using var reader = count.ExecuteReader();
        reader.Read();
        Count = reader.GetInt64(0);
        if (reader.GetInt64(1) != Count - 1)
        {
            throw new SandboxLogException(logPath,
                $"Sandbox log '{logPath}' is corrupted: it is not a prefix of the schedule ({Count} rows, last seq {reader.GetInt64(1)}). It was left as it is; simulate into a new run folder to start fresh.", null);
        }
    }

    /// <summary>
    /// Names the first setting that differs between the log and this run (a fingerprint line is "Name=value"), both
    /// values, and how to resume or start fresh.
    /// </summary>
    internal static SandboxLogException Mismatch(string logPath, string stored, string fingerprint)
    {
        string[] was = stored.Split('\n'), now = fingerprint.Split('\n');
        int i = 0;
        while (i < Math.Min(was.Length, now.Length) && was[i] == now[i]) i++;
        string Line(string[] lines) => i < lines.Length ? lines[i] : "";
        string before = Line(was), after = Line(now);
        string name = (after.Length > 0 ? after : before).Split('=')[0];
        string Value(string line) => UserText.Excerpt(line.Length > name.Length ? line[(name.Length + 1)..] : "(none)", 80);
        return new SandboxLogException(logPath,
            $"Sandbox log '{logPath}' was written with other settings, so this run cannot resume it: {name} was '{Value(before)}', this run has '{Value(after)}'. " +
            "Run with the same settings (and models) to resume, or simulate into a new run folder (or delete the log) to start fresh.", null);
    }

    /// <summary>The logged memory updates, in schedule order.</summary>
    public IReadOnlyList<(int AgentId, MemoryEntry Entry)> MemoryUpdates()
    {
        using var c = _connection.CreateCommand();
        c.CommandText = "SELECT agent_id, round, question, answer FROM memory_updates ORDER BY seq";
        using var r = c.ExecuteReader();
        var list = new List<(int, MemoryEntry)>();
        while (r.Read()) list.Add((r.GetInt32(0), new MemoryEntry(r.GetString(2), r.GetString(3), r.GetInt32(1))));
        return list;
    }

    /// <summary>The logged interactions from <paramref name="fromSeq"/> on, in schedule order, as <see cref="Commit"/> took them.</summary>
    public IEnumerable<LoggedInteraction> Interactions(long fromSeq)
    {
        using var c = _connection.CreateCommand();
        c.CommandText = """
            SELECT i.seq, i.record, i.tokens_in, i.tokens_out, m.round, m.question, m.answer
            FROM interactions i LEFT JOIN memory_updates m ON m.seq = i.seq WHERE i.seq >= $from ORDER BY i.seq
            """;
        c.Parameters.AddWithValue("$from", fromSeq);
        using var r = c.ExecuteReader();
        while (r.Read())
        {
            var record = JsonSerializer.Deserialize<InteractionRecord>(r.GetString(1), SandboxLog.RecordJson)
                ?? throw new SandboxLogException(_logPath, $"Sandbox log '{_logPath}' is corrupted: interaction {r.GetInt64(0)} holds null.", null);
            var update = r.IsDBNull(4) ? null : new MemoryEntry(r.GetString(5), r.GetString(6), r.GetInt32(4));
            yield return new LoggedInteraction(r.GetInt64(0), record, update, r.GetInt64(2), r.GetInt64(3));
        }
    }

    /// <summary>Appends interaction <paramref name="seq"/> (which must be the next one) in one transaction.</summary>
    public void Commit(long seq, InteractionRecord record, MemoryEntry? memoryUpdate, long tokensIn, long tokensOut)
    {
        if (seq != Count) throw new InvalidOperationException($"Interaction {seq} committed out of order; the log holds {Count}.");
        try
        {
            CommitRows(seq, record, memoryUpdate, tokensIn, tokensOut);
        }
        catch (SqliteException e) when (Unwritable(_logPath, e) is { } unwritable)
        {
            throw unwritable;
        }
        Count++;
    }

    private void CommitRows(long seq, InteractionRecord record, MemoryEntry? memoryUpdate, long tokensIn, long tokensOut)
    {
        using var tx = _connection.BeginTransaction();
        Insert(tx, "INSERT INTO interactions (seq, round, agent_id, label, record, tokens_in, tokens_out) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            seq, record.Round, record.AgentId, record.Label, JsonSerializer.Serialize(record, SandboxLog.RecordJson), tokensIn, tokensOut);
        if (memoryUpdate is not null)
        {
            Insert(tx, "INSERT INTO memory_updates (seq, agent_id, round, question, answer) VALUES ($1, $2, $3, $4, $5)",
                seq, record.AgentId, memoryUpdate.Round, memoryUpdate.Question, memoryUpdate.Answer);
        }
        int ordinal = 0;
        foreach (var (kind, rater, pass, rating) in record.Ratings().Where(r => !r.Rating.Succeeded))
        {
            Insert(tx, "INSERT INTO rating_failures (seq, ordinal, kind, rater, pass, failure, raw_reply, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                seq, ordinal++, kind, rater, pass, rating.FailureReason ?? "", rating.RawReply, rating.Attempts);
        }
        tx.Commit();
    }

    private void Insert(SqliteTransaction tx, string sql, params object[] values)
    {
        using var c = _connection.CreateCommand();
        c.Transaction = tx;
        c.CommandText = sql;
        for (int i = 0; i < values.Length; i++) c.Parameters.AddWithValue("$" + (i + 1).ToString(CultureInfo.InvariantCulture), values[i]);
        c.ExecuteNonQuery();
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var c = connection.CreateCommand();
        c.CommandText = sql;
        c.ExecuteNonQuery();
    }

    public void Dispose() => _connection.Dispose();
}
