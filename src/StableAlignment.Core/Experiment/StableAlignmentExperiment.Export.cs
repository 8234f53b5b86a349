using StableAlignment.Core.Models;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Exports a trained variant of the first training seed, so that transformers, vLLM, llama.cpp or Ollama can load it: a Hugging Face folder
    /// (safetensors), a GGUF file, or (for a LoRA variant) a PEFT adapter folder. The chat template written back is the
    /// dataset's prompt format, so servers format prompts exactly as training did.
    /// </summary>
    /// <param name="variant">The variant's name, as in <see cref="ExperimentOptions.Variants"/>.</param>
    /// <param name="format">What to write.</param>
    /// <param name="dtype">The number format; null for the format's default (f16 for GGUF, f32 otherwise).</param>
    /// <param name="target">The folder (Hugging Face, PEFT) or file (GGUF) to write.</param>
    /// <param name="progress">Told after each tensor written.</param>
    /// <param name="cancellationToken">Checked before each tensor; a cancelled export leaves no partial file.</param>
    /// <returns>A task that completes when the export is written.</returns>
    /// <exception cref="ExperimentException">The run has no trained variant of that name, or its checkpoint is of another training run.</exception>
    /// <exception cref="RunFolderInUseException">Another process is running a step in the run folder.</exception>
    public async Task ExportAsync(string variant, ExportFormat format, ExportDType? dtype, string target, IProgress<ExportProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(variant);
        ArgumentException.ThrowIfNullOrWhiteSpace(target);
        using var step = EnterStep();
        var type = dtype ?? ModelExporter.DefaultDType(format);
        ModelExporter.Validate(format, type);
        var training = await TrainingSummary.ReadAsync<TrainingSummary>(Folder.TrainingSummary, "train", cancellationToken).ConfigureAwait(false);
        var trained = training.Variants.FirstOrDefault(v => v.Name == variant)
            ?? throw new ExperimentException($"The run in '{Folder.Root}' has no variant '{variant}'; it has {string.Join(", ", training.Variants.Select(v => v.Name))}.");
        RequireOneTrainingRun(Folder, training, [trained]);
        var options = new ModelExportOptions { ChatTemplate = Options.Dataset.Template.ChatTemplate, ModelName = trained.Name };
        await Task.Run(() => ModelExporter.ExportCheckpoint(Path.Combine(Folder.Root, trained.Checkpoint), format, type, target, options, progress, cancellationToken),
            cancellationToken).ConfigureAwait(false);
    }
}
