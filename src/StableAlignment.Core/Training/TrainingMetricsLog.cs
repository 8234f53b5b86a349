using System.Globalization;
using System.Text.Json;

namespace StableAlignment.Core.Training;

/// <summary>
/// Writes training metrics to a directory as they arrive: <c>metrics.jsonl</c> (every event), <c>train.csv</c> and
/// <c>validation.csv</c>. Files are appended to, so a resumed run continues them; <see cref="TrainingHistory.Read"/>
/// reads the whole history back.
/// </summary>
internal sealed class TrainingMetricsLog : IDisposable
{
    internal const string EventsFileName = "metrics.jsonl";
    internal static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private readonly string _directory;
    private readonly StreamWriter _jsonl;
    private readonly StreamWriter _trainCsv;
    private readonly StreamWriter _validationCsv;

    public TrainingMetricsLog(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory);
        _jsonl = Open(EventsFileName, null);
        _trainCsv = Open("train.csv", "stage,global_step,stage_step,epoch,loss,sft_term,ranking_term,ranking_accuracy,learning_rate,grad_norm,skipped,tokens,elapsed_s");
        _validationCsv = Open("validation.csv", "stage,global_step,ranking_accuracy,mean_best_nll,mean_ranking_term,loss,groups");
    }

    private StreamWriter Open(string name, string? header)
    {
        var path = Path.Combine(_directory, name);
        var isNew = !File.Exists(path) || new FileInfo(path).Length == 0;
        var writer = new StreamWriter(path, append: true) { AutoFlush = true };
        if (isNew && header is not null) writer.WriteLine(header);
        return writer;
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    public void Add(TrainingStepMetrics m)
    {
        _jsonl.WriteLine(JsonSerializer.Serialize(new { kind = "step", metrics = m }, Json));
        var p = m.Position;
        _trainCsv.WriteLine(string.Join(',', Csv(m.StageName), p.GlobalStep, p.StageStep, p.Epoch, F(m.Loss), F(m.SftTerm), F(m.RankingTerm),
            F(m.RankingAccuracy), F(m.LearningRate), F(m.GradientNorm), m.Skipped ? 1 : 0, m.Tokens, F(m.ElapsedSeconds)));
    }

    public void Add(ValidationMetrics m)
    {
        _jsonl.WriteLine(JsonSerializer.Serialize(new { kind = "validation", metrics = m }, Json));
        _validationCsv.WriteLine(string.Join(',', Csv(m.StageName), m.GlobalStep, F(m.RankingAccuracy), F(m.MeanBestNll), F(m.MeanRankingTerm), F(m.Loss), m.Groups));
    }

    private static string Csv(string s) => s.Contains(',', StringComparison.Ordinal) || s.Contains('"', StringComparison.Ordinal) ? $"\"{s.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : s;

    public void Dispose()
    {
        _jsonl.Dispose();
        _trainCsv.Dispose();
        _validationCsv.Dispose();
    }
}

/// <summary>Every step and validation a trainer logged to a metrics directory, across resumptions, in the order written.</summary>
/// <param name="Steps">The optimizer steps.</param>
/// <param name="Validations">The validations.</param>
public sealed record TrainingHistory(IReadOnlyList<TrainingStepMetrics> Steps, IReadOnlyList<ValidationMetrics> Validations)
{
    /// <summary>Reads <c>metrics.jsonl</c> from a <see cref="TrainerOptions.MetricsDirectory"/>.</summary>
    /// <param name="metricsDirectory">The directory.</param>
    /// <returns>The history; empty when the directory holds no metrics.</returns>
    /// <exception cref="InvalidDataException">A line is not a metrics event; the message names the file and line.</exception>
    public static TrainingHistory Read(string metricsDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(metricsDirectory);
        string path = Path.Combine(metricsDirectory, TrainingMetricsLog.EventsFileName);
        var steps = new List<TrainingStepMetrics>();
        var validations = new List<ValidationMetrics>();
        if (!File.Exists(path)) return new TrainingHistory(steps, validations);
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var metrics = doc.RootElement.GetProperty("metrics");
                switch (doc.RootElement.GetProperty("kind").GetString())
                {
                    case "step":
                        steps.Add(metrics.Deserialize<TrainingStepMetrics>(TrainingMetricsLog.Json)!);
                        break;
                    case "validation":
                        validations.Add(metrics.Deserialize<ValidationMetrics>(TrainingMetricsLog.Json)!);
                        break;
                    default:
                        throw new InvalidDataException("unknown kind");
                }
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or InvalidDataException)
            {
                throw new InvalidDataException($"'{path}' line {lineNumber} is not a training metrics event: {e.Message}", e);
            }
        }
        return new TrainingHistory(steps, validations);
    }
}
