using System.Globalization;
using System.Text.Json;

namespace StableAlignment.Core.Training;

/// <summary>
/// Writes training metrics to a directory as they arrive: <c>metrics.jsonl</c> (every event), <c>train.csv</c>,
/// <c>validation.csv</c>, and on <see cref="WriteCurves"/> the PNG curves <c>loss.png</c> and <c>validation.png</c>.
/// Files are appended to, so a resumed run continues them.
/// </summary>
internal sealed class TrainingMetricsLog : IDisposable
{
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private readonly string _directory;
    private readonly StreamWriter _jsonl;
    private readonly StreamWriter _trainCsv;
    private readonly StreamWriter _validationCsv;

    public TrainingMetricsLog(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory);
        _jsonl = Open("metrics.jsonl", null);
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

    /// <summary>Draws the training loss and the validation curves of this run.</summary>
    public void WriteCurves(IReadOnlyList<TrainingStepMetrics> steps, IReadOnlyList<ValidationMetrics> validations)
    {
        var trained = steps.Where(s => !s.Skipped && double.IsFinite(s.Loss)).ToList();
        if (trained.Count > 0)
        {
            using var plot = new ScottPlot.Plot();
            foreach (var stage in trained.GroupBy(s => s.StageName))
            {
                var line = plot.Add.Scatter(stage.Select(s => (double)s.Position.GlobalStep).ToArray(), stage.Select(s => s.Loss).ToArray());
                line.LegendText = stage.Key;
                line.MarkerSize = 0;
            }
            plot.Title("Training loss");
            plot.XLabel("optimizer step");
            plot.YLabel("loss");
            plot.ShowLegend();
            plot.SavePng(Path.Combine(_directory, "loss.png"), 900, 500);
        }

        if (validations.Count > 0)
        {
            using var plot = new ScottPlot.Plot();
            var x = validations.Select(v => (double)v.GlobalStep).ToArray();
            var accuracy = plot.Add.Scatter(x, validations.Select(v => v.RankingAccuracy).ToArray());
            accuracy.LegendText = "ranking accuracy";
            var nll = plot.Add.Scatter(x, validations.Select(v => v.MeanBestNll).ToArray());
            nll.LegendText = "mean best NLL";
            plot.Title("Validation (held-out queries)");
            plot.XLabel("optimizer step");
            plot.ShowLegend();
            plot.SavePng(Path.Combine(_directory, "validation.png"), 900, 500);
        }
    }

    public void Dispose()
    {
        _jsonl.Dispose();
        _trainCsv.Dispose();
        _validationCsv.Dispose();
    }
}
