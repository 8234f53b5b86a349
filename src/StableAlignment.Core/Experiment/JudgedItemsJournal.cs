using System.Text;
using System.Text.Json;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Serialization;

namespace StableAlignment.Core.Experiment;

/// <summary>
/// <c>evaluation/judged.jsonl</c> as a journal: each judged answer is appended (and flushed) as soon as the judge has
/// rated it, with the settings it was judged under, and read back on the next evaluation so an interrupted run asks
/// neither the model nor the judge again for what it has. A journal of another training run is stale (its checkpoints
/// were replaced) and starts afresh; a line of other settings of the same run (another judge or generation length) is
/// refused with the first difference named, never mixed in; a line that cannot be read is reported with its number. Only an unfinished last line (a write cut off by a kill) is dropped.
/// </summary>
internal sealed class JudgedItemsJournal : IDisposable
{
    private readonly string _path;
    private readonly string _settings;
    private StreamWriter? _writer;

    private JudgedItemsJournal(string path, string settings, IReadOnlyList<JudgedItem> items)
    {
        _path = path;
        _settings = settings;
        Items = items;
    }

    /// <summary>The items judged before, in the order they were judged.</summary>
    public IReadOnlyList<JudgedItem> Items { get; }

    /// <summary>Opens (or creates) the journal for judging under <paramref name="settings"/>.</summary>
    /// <exception cref="ExperimentException">A line is unreadable or was judged under other settings.</exception>
    public static JudgedItemsJournal Open(string path, IReadOnlyList<(string Name, string Value)> settings)
    {
        string current = string.Join("; ", settings.Select(s => $"{s.Name}={s.Value}"));
        var items = new List<JudgedItem>();
        if (File.Exists(path))
        {
            string text = File.ReadAllText(path, Encoding.UTF8);
            int end = text.LastIndexOf('\n') + 1;
            if (end < text.Length)
            {
                // The last write was cut off (the process was killed mid-line): keep the whole lines only.
                using var truncate = new FileStream(path, FileMode.Open, FileAccess.Write);
                truncate.SetLength(Encoding.UTF8.GetByteCount(text.AsSpan(0, end)));
            }
            string[] lines = text[..end].Split('\n');
            if (lines.FirstOrDefault(l => l.Length > 0) is { } first && StaleRun(first, current))
            {
                // Answers of checkpoints that a later train replaced: nothing to resume, and nothing to keep.
                File.Delete(path);
                lines = [];
            }
            for (int n = 0; n < lines.Length; n++)
            {
                if (lines[n].Length == 0) continue;
                items.Add(ReadLine(path, n + 1, lines[n], current));
            }
        }
        return new JudgedItemsJournal(path, current, items);
    }

    private static JudgedItem ReadLine(string path, int number, string line, string current)
    {
        JudgedItem item;
        string stored;
        try
        {
            using var json = JsonDocument.Parse(line);
            stored = json.RootElement.TryGetProperty("settings", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";
            item = JudgeEvaluation.FromJsonObject(json.RootElement);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new ExperimentException(
                $"'{path}' line {number} is not a judged answer ({UserText.Excerpt(e.Message)}); the file was left as it is. Delete it to judge every answer again.", e);
        }
        if (stored != current)
        {
            var was = Pairs(stored);
            var now = Pairs(current);
            string name = now.Keys.Concat(was.Keys).FirstOrDefault(k => was.GetValueOrDefault(k) != now.GetValueOrDefault(k)) ?? "settings";
            throw new ExperimentException(
                $"'{path}' holds answers judged with other settings: {name} was '{UserText.Excerpt(was.GetValueOrDefault(name, "(none)"), 80)}', this run has '{UserText.Excerpt(now.GetValueOrDefault(name, "(none)"), 80)}'. " +
                "Evaluate with the same settings to resume, or delete the file to judge again.");
        }
        return item;
    }

    /// <summary>Whether <paramref name="line"/> was judged for another training run than <paramref name="current"/> names.</summary>
    private static bool StaleRun(string line, string current)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            if (!json.RootElement.TryGetProperty("settings", out var s) || s.ValueKind != JsonValueKind.String) return false;
            const string key = "training_run";
            return Pairs(s.GetString()!).GetValueOrDefault(key) is { } was && Pairs(current).GetValueOrDefault(key) is { } now && was != now;
        }
        catch (JsonException)
        {
            return false; // reported, with its line number, by the read that follows
        }
    }

    private static Dictionary<string, string> Pairs(string settings) =>
        settings.Split("; ", StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2))
            .GroupBy(p => p[0], StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().ElementAtOrDefault(1) ?? "", StringComparer.Ordinal);

    /// <summary>Appends one judged answer and flushes it to the operating system, so a killed process keeps it.</summary>
    public async ValueTask AppendAsync(JudgedItem item, CancellationToken cancellationToken)
    {
        var line = JudgeEvaluation.ToJsonObject(item);
        line["settings"] = _settings;
        if (_writer is null)
        {
            // Created at the first answer, so an evaluation that fails before judging leaves no empty file.
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(_path))!);
            _writer = new StreamWriter(new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        }
        await _writer.WriteAsync(JsonSerializer.Serialize(line, JudgeJsonContext.Default.DictionaryStringObject).AsMemory(), cancellationToken).ConfigureAwait(false);
        await _writer.WriteAsync("\n".AsMemory(), cancellationToken).ConfigureAwait(false);
        await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _writer?.Dispose();
}
