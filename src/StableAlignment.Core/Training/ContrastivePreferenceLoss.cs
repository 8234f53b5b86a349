using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// The Stable Alignment contrastive preference objective (spec §4), batched over many queries, on TorchSharp.
/// This is the reference path: it runs on any device TorchSharp supports and is what the CUDA kernels are checked against.
/// </summary>
/// <remarks>
/// <para>For each group (query) <c>g</c> with responses <c>i</c> rated <c>r_i</c>:</para>
/// <list type="bullet">
/// <item><c>NLL_i</c> is the token mean (or sum) of the response's negative log-likelihood over its unmasked tokens,
/// computed through log-sum-exp so that no finite input yields NaN or infinity.</item>
/// <item>The best set <c>B_g</c> holds every response that has the group's top rating. Ties for best are all best:
/// the SFT term is their mean NLL, and they are not ranked against each other.</item>
/// <item>For every other response <c>i</c>: <c>d_i = SFT_g - NLL_i + M (r_best - r_i) / scale</c>, with each response's
/// own rating. (The Python reference indexes sorted ratings by original position; for ratings [3, 7, 5] it gives the
/// 5-rated response the 3-rated one's margin.)</item>
/// <item>The ranking term reduces the <c>d_i</c> as <see cref="ContrastivePreferenceOptions.Reduction"/> says; it is 0
/// for a group with no lower-rated response (a single response, or all tied).</item>
/// <item>Loss = mean over groups of <c>SFT_g + lambda * rank_g</c> (or of <c>SFT_g</c> alone in SFT-only mode).</item>
/// </list>
/// </remarks>
public sealed class ContrastivePreferenceLoss : IPreferenceLoss, IDisposable
{
    /// <summary>Default logits workspace of <see cref="ComputeFromHidden"/>: 160 MiB, 276 rows at V = 151,936 (float32).</summary>
    internal const long DefaultFusedChunkBytes = 160L << 20;

    private readonly LossWorkspaces _workspaces = new();
    private readonly HostLogitRowLoss _hostRows;
    private readonly TorchLogitRowLoss _torchRows = new();
    private readonly Lock _kernelLock = new();
    private KernelLogitRowLoss? _kernelRows;
    private IKernelDevice? _kernelDevice;
    private bool _ownsKernelDevice, _kernelsUnavailable, _disposed;
    private readonly int _fusedChunkRows;

    /// <summary>Creates the loss; the options are validated here.</summary>
    /// <param name="options">The objective's options; <see langword="null"/> for the defaults.</param>
    public ContrastivePreferenceLoss(ContrastivePreferenceOptions? options = null)
    {
        Options = (options ?? new ContrastivePreferenceOptions()).Validate();
        _hostRows = new HostLogitRowLoss(_workspaces);
    }

    /// <summary>Runs the per-chunk work of <see cref="ComputeFromHidden"/> through <paramref name="kernelDevice"/> (tests: the kernels' CPU build).</summary>
    internal ContrastivePreferenceLoss(ContrastivePreferenceOptions? options, IKernelDevice kernelDevice) : this(options)
    {
        _kernelDevice = kernelDevice;
        _kernelRows = new KernelLogitRowLoss(new PreferenceKernels(kernelDevice), _workspaces);
    }

    /// <inheritdoc />
    public ContrastivePreferenceOptions Options { get; }

    /// <summary>
    /// When <see langword="true"/>, <see cref="Compute"/>'s backward pass writes <c>d(loss)/d(logits)</c> over the logits'
    /// own storage instead of into a new tensor, as Liger-Kernel does: no logits-sized allocation, whose first touch
    /// costs more than the arithmetic on these machines. It applies only when the logits are the contiguous,
    /// non-leaf output of another operation (say the model's output layer) and require a gradient; a leaf tensor
    /// always gets a new gradient. Use it only when nothing reads the logits after the backward pass: afterwards they
    /// hold the gradient, and autograd refuses a second backward pass through them (they count as modified in place; in
    /// TorchSharp 0.107 that refusal, like any error inside a custom backward, ends the process).
    /// Default <see langword="false"/>; the trainer turns it on for its own logits.
    /// </summary>
    public bool OverwriteLogitsWithGradient { get; init; }

    /// <summary>
    /// Rows of logits that <see cref="ComputeFromHidden"/> forms at once; 0 (the default) for as many as fit in
    /// 160 MiB (276 rows at V = 151,936 in float32, 1,310 at V = 32,000). Its extra memory is about this many rows
    /// times V elements, whatever the batch.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int FusedChunkRows
    {
        get => _fusedChunkRows;
        init => _fusedChunkRows = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(FusedChunkRows), value, "FusedChunkRows must be 0 (automatic) or positive.");
    }

    /// <summary>Forces the TorchSharp-operation row work on every device (tests of that path).</summary>
    internal LogitRowBackend RowBackend { get; init; }

    /// <summary>How <see cref="ComputeFromHidden"/> schedules its gradient work (chosen by measurement, docs/training.md).</summary>
    internal FusedGradientSchedule FusedSchedule { get; init; } = FusedGradientSchedule.FoldedInForward;

    /// <summary>Bytes of the persistent chunk workspaces this loss holds (they are reused across calls).</summary>
    internal long WorkspaceBytes => _workspaces.Bytes;

    /// <inheritdoc />
    public PreferenceLossResult Compute(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var inputs = PreferenceInputs.Create(logits, targets, groups, ratings, lossMask, Options);
        var device = logits.device;
        int n = inputs.Responses, tLen = inputs.Tokens;

        using var scope = torch.NewDisposeScope();
        var safeTargets = new long[n * tLen];
        for (var k = 0; k < safeTargets.Length; k++)
            // Masked positions may hold the ignore index; point them at token 0, their weight is 0 anyway.
            safeTargets[k] = inputs.TokenMask[k] ? inputs.TargetIds[k] : 0;

        var overwrite = OverwriteLogitsWithGradient && logits.requires_grad && !logits.is_leaf && logits.is_contiguous();
        var rows = RowBackend == LogitRowBackend.TorchOps || logits.device_type != DeviceType.CPU ? (ILogitRowLoss)_torchRows : _hostRows;
        var tokenNll = TokenNllFunction.Apply(
            logits.reshape(n * (long)tLen, inputs.Vocabulary).contiguous(),
            torch.tensor(safeTargets, device: device),
            new TokenNllFunction.Settings(rows, overwrite));
        return Result(inputs, tokenNll);
    }

    /// <summary>
    /// The loss of the logits <c>hidden @ outputWeightᵀ</c> without ever forming them for the whole batch: the output
    /// projection and the loss are fused and walk the rows in the loss one bounded chunk at a time (Liger-Kernel's
    /// fused linear losses, Apple's Cut Cross-Entropy). Same options, validation and result as <see cref="Compute"/>;
    /// backward gives gradients to <paramref name="hidden"/> and <paramref name="outputWeight"/>.
    /// </summary>
    /// <remarks>
    /// <para>Extra memory beyond the inputs and their gradients is O(chunk × V + N·T): one reused
    /// <c>[chunk, V]</c> workspace (see <see cref="FusedChunkRows"/>) and a few values per token. Tokens outside the
    /// loss (masked prompts) cost nothing.</para>
    /// <para>Each token's gradient coefficient is folded into <c>[chunk, H]</c> rows: the forward pass prepares the
    /// hidden-state gradient rows <c>(softmax - onehot) W</c> while a chunk's logits are at hand, and the backward pass
    /// scales them, exactly for any incoming gradient (also through <see cref="PreferenceLossResult.ResponseNll"/>). A
    /// trainable output weight has its chunks recomputed in the backward pass, and its gradient is accumulated straight
    /// into <c>outputWeight.grad</c> when it is a leaf (as <c>backward()</c> would; <c>torch.autograd.grad</c> with respect
    /// to it is not supported), so no second weight-sized buffer appears.</para>
    /// <para>float32, bfloat16 (accumulated in float32) and float64, on the CPU; on CUDA the matmuls are TorchSharp's
    /// and the per-chunk loss work runs in the hand-written kernels (<see cref="CudaContrastivePreferenceLoss"/>'s)
    /// when they are available, in TorchSharp operations otherwise.</para>
    /// </remarks>
    /// <param name="hidden">The final-norm output <c>[N, T, H]</c>; <c>hidden[n, t]</c> predicts <c>targets[n, t]</c>.</param>
    /// <param name="outputWeight">The output projection or tied embedding <c>[V, H]</c>, of the type and device of <paramref name="hidden"/>.</param>
    /// <param name="targets">Target ids <c>[N, T]</c>.</param>
    /// <param name="groups">Group (query) index of each response <c>[N]</c>.</param>
    /// <param name="ratings">Rating of each response <c>[N]</c>.</param>
    /// <param name="lossMask">Optional loss mask <c>[N, T]</c>.</param>
    /// <returns>The differentiable loss and its per-group and per-response parts. Dispose it after the step.</returns>
    /// <exception cref="ArgumentException">An input has the wrong shape, type or device, or holds an invalid value; the message names it.</exception>
    public PreferenceLossResult ComputeFromHidden(Tensor hidden, Tensor outputWeight, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var inputs = PreferenceInputs.Create(hidden, outputWeight, targets, groups, ratings, lossMask, Options);
        var device = hidden.device;
        using var scope = torch.NewDisposeScope();
        var needsHidden = hidden.requires_grad && torch.is_grad_enabled();
        var needsWeight = outputWeight.requires_grad && torch.is_grad_enabled();
        var chunkRows = FusedChunkRows > 0 ? FusedChunkRows : (int)Math.Clamp(DefaultFusedChunkBytes / ((long)inputs.Vocabulary * hidden.ElementSize), 1, 1 << 16);
        var plan = FusedRowPlan.Create(inputs, chunkRows, FusedRowsFor(hidden), _workspaces, new FusedRowPlan.Settings(FusedSchedule, needsHidden, needsWeight));
        var tokenNll = FusedLinearPreferenceFunction.Apply(
            hidden.reshape(inputs.Responses * (long)inputs.Tokens, hidden.shape[2]),
            outputWeight,
            torch.tensor(plan.ActiveRows, device: device),
            torch.tensor(plan.ActiveTargets, device: device),
            plan);
        return Result(inputs, tokenNll);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _workspaces.Dispose();
        if (_ownsKernelDevice) _kernelDevice?.Dispose();
    }

    /// <summary>The row work of the fused path: the kernels when injected or on a CUDA device that has them, else by device.</summary>
    private ILogitRowLoss FusedRowsFor(Tensor hidden)
    {
        if (RowBackend == LogitRowBackend.TorchOps) return _torchRows;
        var kernelType = hidden.dtype is ScalarType.Float32 or ScalarType.BFloat16;
        if (_kernelRows is not null && kernelType && (!_ownsKernelDevice || hidden.device_type == DeviceType.CUDA)) return _kernelRows;
        if (hidden.device_type == DeviceType.CPU) return _hostRows;
        if (hidden.device_type == DeviceType.CUDA && kernelType && TryOpenKernels() is { } kernels) return kernels;
        return _torchRows;
    }

    private KernelLogitRowLoss? TryOpenKernels()
    {
        lock (_kernelLock)
        {
            if (_kernelRows is not null || _kernelsUnavailable) return _kernelRows;
            if (!CudaKernelDevice.IsAvailable(out _))
            {
                _kernelsUnavailable = true;
                return null;
            }
            _kernelDevice = CudaKernelDevice.Open();
            _ownsKernelDevice = true;
            _kernelRows = new KernelLogitRowLoss(new PreferenceKernels(_kernelDevice), _workspaces);
            return _kernelRows;
        }
    }

    /// <summary>The result from token NLLs <c>[R]</c> (moved out of the caller's dispose scope).</summary>
    private PreferenceLossResult Result(PreferenceInputs inputs, Tensor tokenNll)
    {
        var (loss, responseNll, sft, rank) = GroupTerms(inputs, tokenNll);
        double[] nllHost;
        using (var host = responseNll.detach().to(ScalarType.Float64, CPU))
            nllHost = host.data<double>().ToArray();

        return new PreferenceLossResult(
            loss.MoveToOuterDisposeScope(),
            responseNll.MoveToOuterDisposeScope(),
            sft.MoveToOuterDisposeScope(),
            rank.MoveToOuterDisposeScope(),
            inputs.BestHasLowestNll(nllHost));
    }

    /// <summary>The group part of the objective on token NLLs <c>[R]</c>: loss, response NLLs, SFT and ranking terms.</summary>
    private (Tensor Loss, Tensor ResponseNll, Tensor Sft, Tensor Rank) GroupTerms(PreferenceInputs inputs, Tensor tokenNll)
    {
        var device = tokenNll.device;
        var accType = tokenNll.dtype;
        int n = inputs.Responses, tLen = inputs.Tokens, gCount = inputs.GroupCount;

        // Token weights fold the mask and the length normalisation together: NLL_i = sum_t w[i,t] * tokNLL[i,t].
        var weights = new double[n * tLen];
        for (int i = 0; i < n; i++)
        {
            double w = Options.LengthNormalization == LengthNormalization.TokenMean ? 1.0 / inputs.Lengths[i] : 1.0;
            for (int j = 0; j < tLen; j++)
                weights[i * tLen + j] = inputs.TokenMask[i * tLen + j] ? w : 0.0;
        }
        var responseNll = (tokenNll.view(n, tLen) * torch.tensor(weights, device: device).to(accType).view(n, tLen)).sum(1);

        // Dense [G, N] averaging matrices: G and N are small, and a matmul keeps the reduction differentiable in one op.
        var bestAverage = new double[gCount * n];
        var otherAverage = new double[gCount * n];
        var isOther = new bool[gCount * n];
        var margins = new double[n];
        for (int i = 0; i < n; i++)
        {
            int g = (int)inputs.GroupOf[i];
            if (inputs.IsBest[i])
            {
                bestAverage[g * n + i] = 1.0 / inputs.BestCount[g];
            }
            else
            {
                otherAverage[g * n + i] = 1.0 / inputs.OtherCount[g];
                isOther[g * n + i] = true;
            }
            margins[i] = inputs.MarginOf(i, Options);
        }

        var sft = torch.tensor(bestAverage, device: device).to(accType).view(gCount, n).matmul(responseNll);
        var groupIndex = torch.tensor(inputs.GroupOf, device: device);
        var d = (sft.index_select(0, groupIndex) - responseNll).add(torch.tensor(margins, device: device).to(accType), HeldScalars.One);
        var otherMatrix = torch.tensor(otherAverage, device: device).to(accType).view(gCount, n);
        Tensor rank = Options.Reduction switch
        {
            RankingReduction.HingeOfMean => otherMatrix.matmul(d).relu(),
            RankingReduction.MeanOfHinges => otherMatrix.matmul(d.relu()),
            RankingReduction.HingeOfMax => HingeOfMax(d, torch.tensor(isOther, device: device).view(gCount, n), inputs),
            _ => throw new InvalidOperationException($"Unhandled reduction {Options.Reduction}."),
        };

        using var rankingWeight = Options.RankingWeight.ToScalar();
        var loss = Options.SftOnly ? sft.mean() : sft.add(rank.mul(rankingWeight), HeldScalars.One).mean();
        return (loss, responseNll, sft, rank);
    }

    private static Tensor HingeOfMax(Tensor d, Tensor isOther, PreferenceInputs inputs)
    {
        int gCount = inputs.GroupCount, n = inputs.Responses;
        var masked = d.unsqueeze(0).expand(gCount, n).masked_fill(isOther.logical_not(), HeldScalars.NegativeInfinity);
        var max = masked.max(1).values;
        var hasOther = torch.tensor(Array.ConvertAll(inputs.OtherCount, c => c > 0), device: d.device);
        // Groups without lower-rated responses have max = -inf; they contribute exactly 0, with zero gradient.
        return torch.where(hasOther, max, torch.zeros_like(max)).relu();
    }
}
