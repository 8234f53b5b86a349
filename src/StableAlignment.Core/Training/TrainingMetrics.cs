namespace StableAlignment.Core.Training;

/// <summary>Where a run is: stage, epoch, next batch of the epoch, and optimizer steps taken.</summary>
/// <param name="Stage">Index of the current stage.</param>
/// <param name="Epoch">Epoch within the stage.</param>
/// <param name="NextBatch">Index, within the epoch, of the next batch to train on.</param>
/// <param name="StageStep">Optimizer steps taken in this stage (skipped ones included).</param>
/// <param name="GlobalStep">Optimizer steps taken in the run.</param>
public sealed record TrainingPosition(int Stage, int Epoch, int NextBatch, int StageStep, int GlobalStep)
{
    /// <summary>The start of a run.</summary>
    public static TrainingPosition Start { get; } = new(0, 0, 0, 0, 0);
}

/// <summary>One optimizer step's figures.</summary>
/// <param name="StageName">The stage.</param>
/// <param name="Position">The position after the step.</param>
/// <param name="Loss">Mean loss over the step's batches (NaN when skipped for a non-finite loss).</param>
/// <param name="SftTerm">Mean over groups of the SFT term (NLL of the best responses).</param>
/// <param name="RankingTerm">Mean over groups of the ranking term before lambda.</param>
/// <param name="RankingAccuracy">Share of the step's rankable groups whose best response had the lowest NLL.</param>
/// <param name="LearningRate">Learning rate used.</param>
/// <param name="GradientNorm">Global gradient norm before clipping (NaN or infinity when skipped).</param>
/// <param name="Skipped">Whether the step was skipped for a non-finite loss or gradient.</param>
/// <param name="Tokens">Non-padding tokens processed.</param>
/// <param name="ElapsedSeconds">Seconds since the run (or resumption) started.</param>
/// <param name="PeakResidentBytes">Peak resident memory of the process since the stage began, up to the end of this step
/// (Linux VmHWM, restarted at each stage's start; elsewhere the process's peak working set).</param>
public sealed record TrainingStepMetrics(string StageName, TrainingPosition Position, double Loss, double SftTerm, double RankingTerm,
    double RankingAccuracy, double LearningRate, double GradientNorm, bool Skipped, long Tokens, double ElapsedSeconds, long PeakResidentBytes = 0);

/// <summary>Held-out figures.</summary>
/// <param name="StageName">The stage being trained.</param>
/// <param name="GlobalStep">Optimizer steps taken when measured.</param>
/// <param name="RankingAccuracy">Share of rankable groups whose best-rated response has the lowest NLL (NaN if none).</param>
/// <param name="MeanBestNll">Mean over groups of the NLL of the best-rated response(s) (the SFT term).</param>
/// <param name="MeanRankingTerm">Mean over groups of the ranking term before lambda.</param>
/// <param name="Loss">Mean over groups of the stage's loss.</param>
/// <param name="Groups">Groups (queries) evaluated.</param>
public sealed record ValidationMetrics(string StageName, int GlobalStep, double RankingAccuracy, double MeanBestNll, double MeanRankingTerm, double Loss, int Groups);

/// <summary>What kind of event a <see cref="TrainingProgress"/> reports.</summary>
public enum TrainingEventKind
{
    /// <summary>An optimizer step finished.</summary>
    Step,

    /// <summary>A validation pass finished.</summary>
    Validation,

    /// <summary>A stage finished.</summary>
    StageCompleted,
}

/// <summary>A progress event of a training run.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="StageName">The stage.</param>
/// <param name="StageStepCount">Optimizer steps the stage will take in all.</param>
/// <param name="Step">The step's figures, for <see cref="TrainingEventKind.Step"/>.</param>
/// <param name="Validation">The validation figures, for <see cref="TrainingEventKind.Validation"/> (and stage ends that validated).</param>
public sealed record TrainingProgress(TrainingEventKind Kind, string StageName, int StageStepCount, TrainingStepMetrics? Step, ValidationMetrics? Validation);

/// <summary>Summary of one stage.</summary>
/// <param name="Name">The stage.</param>
/// <param name="Objective">Its objective.</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="SkippedSteps">Steps skipped for non-finite values.</param>
/// <param name="FinalValidation">Validation at the stage's end, or null without a validation source.</param>
public sealed record StageReport(string Name, TrainingObjective Objective, int Steps, int SkippedSteps, ValidationMetrics? FinalValidation)
{
    /// <summary>Optimizer steps of the whole run when the stage ended.</summary>
    public int GlobalSteps { get; init; }

    /// <summary>Seconds since the <see cref="StableAlignmentTrainer.Train"/> call started, when the stage ended.</summary>
    public double ElapsedSeconds { get; init; }

    /// <summary>Peak resident memory of the process during the stage, validation included (see <see cref="TrainingStepMetrics.PeakResidentBytes"/>).</summary>
    public long PeakResidentBytes { get; init; }
}

/// <summary>Summary of a run.</summary>
/// <param name="Stages">One entry per stage trained in this call (a resumed run starts at its saved stage).</param>
/// <param name="GlobalSteps">Optimizer steps taken in the whole run.</param>
/// <param name="SkippedSteps">Steps skipped for non-finite values in this call.</param>
/// <param name="TokensPerSecond">Non-padding tokens per second of training in this call.</param>
/// <param name="Steps">Every step's figures from this call.</param>
/// <param name="Validations">Every validation from this call.</param>
/// <param name="PeakResidentBytes">The largest of the stages' <see cref="StageReport.PeakResidentBytes"/>.</param>
public sealed record TrainingReport(IReadOnlyList<StageReport> Stages, int GlobalSteps, int SkippedSteps, double TokensPerSecond,
    IReadOnlyList<TrainingStepMetrics> Steps, IReadOnlyList<ValidationMetrics> Validations, long PeakResidentBytes = 0);
