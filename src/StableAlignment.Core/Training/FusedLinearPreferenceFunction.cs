using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>Where the fused output layer does its gradient work (chosen by measurement, docs/training.md).</summary>
internal enum FusedGradientSchedule
{
    /// <summary>
    /// While each chunk's logits are in the workspace in the forward pass, turn them into <c>P = softmax - onehot</c>
    /// (unscaled) and keep the hidden-state gradient rows <c>U = P W</c>; the backward pass scales row r of U by its
    /// coefficient, exactly for any incoming gradient, and recomputes chunks only for <c>grad_W</c> (a trainable weight).
    /// </summary>
    FoldedInForward,

    /// <summary>The forward pass keeps only log-sum-exps; the backward pass recomputes every chunk and forms <c>G = g * P</c>.</summary>
    RecomputeInBackward,
}

/// <summary>
/// The output projection and the per-token NLL fused, as an autograd function of <c>hidden [R, H]</c> and
/// <c>weight [V, H]</c>: logits <c>H Wᵀ</c> are formed one bounded chunk of rows at a time in a reused workspace and
/// never for the whole batch, and only for the rows in the loss (masked prompt tokens cost nothing). The output is
/// the token NLL <c>[R]</c> (0 on rows outside the loss); the group terms of the loss are ordinary autograd on it.
/// </summary>
/// <remarks>
/// <para>Each row's gradient coefficient <c>g_r = d(out)/d(NLL_r)</c> is folded into <c>[chunk, H]</c> rows rather than
/// into the <c>[chunk, V]</c> block where that saves work: <c>grad_hidden_r = g_r (P W)_r</c>.</para>
/// <para>The weight's gradient is accumulated chunk by chunk straight into <c>weight.grad</c> when the weight is a leaf
/// (created when absent), as autograd's accumulator would: a <c>[V, H]</c> gradient handed back through TorchSharp is
/// copied once more by that accumulator (its managed handle counts as a second owner) and held until the managed
/// handle is finalised, which at V = 151,936 and H = 896 is 544 MB each time. So
/// <c>torch.autograd.grad</c> with respect to a leaf output weight is not supported; <c>backward()</c> is.</para>
/// <para>Extra memory: the <c>[chunk, V]</c> workspace, <c>[chunk, H]</c> scratch and O(R) per-row values, besides the
/// gradients themselves.</para>
/// </remarks>
internal sealed class FusedLinearPreferenceFunction : torch.autograd.SingleTensorFunction<FusedLinearPreferenceFunction>
{
    private const string PlanKey = "plan";

    public override string Name => "StableAlignmentFusedLinearPreference";

    /// <summary>The token NLL <c>[R]</c> of <c>hidden @ weightᵀ</c> at the plan's targets.</summary>
    /// <param name="hidden">Final hidden states <c>[R, H]</c>.</param>
    /// <param name="weight">Output projection <c>[V, H]</c>.</param>
    /// <param name="activeRows">int64 <c>[A]</c>: the rows in the loss, on the hidden states' device.</param>
    /// <param name="activeTargets">int64 <c>[A]</c>: their target ids.</param>
    /// <param name="plan">Chunking, row work and schedule.</param>
    public static Tensor Apply(Tensor hidden, Tensor weight, Tensor activeRows, Tensor activeTargets, FusedRowPlan plan) =>
        apply(hidden, weight, activeRows, activeTargets, plan);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var activeRows = (Tensor)vars[2];
        var activeTargets = (Tensor)vars[3];
        var plan = (FusedRowPlan)vars[4];
        var accType = TokenNllFunction.AccumulationType(hidden.dtype);
        long active = activeRows.shape[0];
        var chunk = new ChunkWork(hidden, weight, activeRows, activeTargets, plan);
        var lse = torch.empty(active, accType, hidden.device);
        var nll = torch.empty(active, accType, hidden.device);
        var hiddenRows = plan.Schedule == FusedGradientSchedule.FoldedInForward && plan.NeedsHiddenGradient ? torch.zeros_like(hidden) : null;
        foreach (var span in plan.Chunks)
        {
            using var scope = torch.NewDisposeScope();
            chunk.Logits(span);
            chunk.Forward(span, lse, nll);
            if (hiddenRows is not null) chunk.AddHiddenRows(span, chunk.SoftmaxMinusOneHot(span, lse, scale: null), hiddenRows);
        }
        ctx.save_for_backward([hidden, weight, activeRows, activeTargets, lse, hiddenRows!]);
        ctx.save_data(PlanKey, plan);
        return torch.zeros(hidden.shape[0], accType, hidden.device).index_copy_(0, activeRows, nll);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor hidden = saved[0], weight = saved[1], activeRows = saved[2], activeTargets = saved[3], lse = saved[4];
        var hiddenRows = saved[5] is { IsInvalid: false } u ? u : null;
        var plan = (FusedRowPlan)ctx.get_data(PlanKey);
        var chunk = new ChunkWork(hidden, weight, activeRows, activeTargets, plan);
        using var incoming = gradOutput.index_select(0, activeRows).to(lse.dtype).contiguous();

        // Prepared in the forward pass: row r of P W times its coefficient (rows outside the loss are 0 in both).
        var gradHidden = hiddenRows?.mul_(gradOutput.to(hidden.dtype).unsqueeze(1));
        var recomputeHidden = gradHidden is null && plan.NeedsHiddenGradient;
        if (recomputeHidden) gradHidden = torch.zeros_like(hidden);
        Tensor? gradWeight = null, returnedWeight = null;
        if (plan.NeedsWeightGradient)
        {
            if (weight.is_leaf)
            {
                if (weight.grad is null)
                {
                    using var fresh = torch.zeros_like(weight);
                    weight.grad = fresh;
                }
                gradWeight = weight.grad;
            }
            else
            {
                gradWeight = returnedWeight = torch.zeros_like(weight);
            }
        }

        if (recomputeHidden || gradWeight is not null)
        {
            foreach (var span in plan.Chunks)
            {
                using var scope = torch.NewDisposeScope();
                var h = chunk.Logits(span);
                var g = chunk.SoftmaxMinusOneHot(span, lse, incoming);
                if (recomputeHidden) chunk.AddHiddenRows(span, g, gradHidden!);
                gradWeight?.addmm_(g.t(), h, 1, 1);
            }
        }

        if (!ReferenceEquals(gradWeight, returnedWeight)) gradWeight?.Dispose(); // a handle on weight.grad, which lives on
        foreach (var t in new[] { hidden, weight, activeRows, activeTargets, lse }) t.Dispose();
        return [gradHidden!, returnedWeight!, null!, null!, null!];
    }

    /// <summary>The per-chunk steps on one batch: logits in the workspace, row work, and the hidden-state product.</summary>
    private sealed class ChunkWork(Tensor hidden, Tensor weight, Tensor activeRows, Tensor activeTargets, FusedRowPlan plan)
    {
        private Tensor _logits = null!;

        /// <summary>Gathers the span's hidden rows and forms their logits <c>h Wᵀ</c> in the workspace; returns the rows.</summary>
        public Tensor Logits(RowSpan span)
        {
            var h = hidden.index_select(0, Rows(span));
            _logits = plan.Workspace("fused-logits", hidden.dtype, hidden.device, span.Length, weight.shape[0]);
            _logits.addmm_(h, weight.t(), 0, 1);
            return h;
        }

        /// <summary>Log-sum-exp and token NLL of the span's logits.</summary>
        public void Forward(RowSpan span, Tensor lse, Tensor nll) =>
            plan.Rows.Forward(_logits, Targets(span), lse.narrow(0, span.Start, span.Length), nll.narrow(0, span.Start, span.Length));

        /// <summary>Turns the span's logits into <c>scale * (softmax - onehot)</c> in place (unscaled when <paramref name="scale"/> is null).</summary>
        public Tensor SoftmaxMinusOneHot(RowSpan span, Tensor lse, Tensor? scale)
        {
            var s = scale?.narrow(0, span.Start, span.Length) ?? plan.Ones(span.Length, lse.dtype, lse.device);
            plan.Rows.Backward(_logits, Targets(span), lse.narrow(0, span.Start, span.Length), s, _logits);
            return _logits;
        }

        /// <summary>Writes <c>p W</c> into the span's rows of <paramref name="target"/> <c>[R, H]</c>.</summary>
        public void AddHiddenRows(RowSpan span, Tensor p, Tensor target)
        {
            var rows = plan.Workspace("fused-hidden-rows", hidden.dtype, hidden.device, span.Length, hidden.shape[1]);
            rows.addmm_(p, weight, 0, 1);
            target.index_copy_(0, Rows(span), rows);
        }

        private Tensor Rows(RowSpan span) => activeRows.narrow(0, span.Start, span.Length);

        private Tensor Targets(RowSpan span) => activeTargets.narrow(0, span.Start, span.Length);
    }
}

/// <summary>A consecutive range of active rows.</summary>
/// <param name="Start">First active row.</param>
/// <param name="Length">Number of rows.</param>
internal readonly record struct RowSpan(int Start, int Length);

/// <summary>
/// How <see cref="FusedLinearPreferenceFunction"/> walks a batch: the rows in the loss (in order), their targets, the
/// chunks, and the shared machinery (row work, workspaces).
/// </summary>
internal sealed class FusedRowPlan
{
    private readonly LossWorkspaces _workspaces;

    /// <summary>How the function schedules its gradient work.</summary>
    /// <param name="Schedule">Hidden-state gradient rows prepared in the forward pass, or everything recomputed in the backward pass.</param>
    /// <param name="NeedsHiddenGradient">Whether to form <c>grad_hidden</c>.</param>
    /// <param name="NeedsWeightGradient">Whether to form <c>grad_W</c> (not for a frozen output layer).</param>
    internal sealed record Settings(FusedGradientSchedule Schedule, bool NeedsHiddenGradient, bool NeedsWeightGradient);

    private FusedRowPlan(long[] activeRows, long[] activeTargets, int chunkRows, ILogitRowLoss rows, LossWorkspaces workspaces, Settings settings)
    {
        ActiveRows = activeRows;
        ActiveTargets = activeTargets;
        Rows = rows;
        _workspaces = workspaces;
        (Schedule, NeedsHiddenGradient, NeedsWeightGradient) = settings;
        Chunks = new RowSpan[(activeRows.Length + chunkRows - 1) / chunkRows];
        for (var c = 0; c < Chunks.Count; c++)
            Chunks[c] = new RowSpan(c * chunkRows, Math.Min(chunkRows, activeRows.Length - c * chunkRows));
    }

    /// <summary>Row index <c>n·T + t</c> of every token in the loss.</summary>
    public long[] ActiveRows { get; }

    /// <summary>The target id of each active row.</summary>
    public long[] ActiveTargets { get; }

    /// <summary>Consecutive active rows, at most the chunk size each.</summary>
    public IList<RowSpan> Chunks { get; }

    public ILogitRowLoss Rows { get; }

    public FusedGradientSchedule Schedule { get; }

    public bool NeedsHiddenGradient { get; }

    public bool NeedsWeightGradient { get; }

    /// <summary>Lists the active rows of <paramref name="inputs"/> and cuts them into chunks of <paramref name="chunkRows"/>.</summary>
    public static FusedRowPlan Create(PreferenceInputs inputs, int chunkRows, ILogitRowLoss rows, LossWorkspaces workspaces, Settings settings)
    {
        var activeRows = Enumerable.Range(0, inputs.TokenMask.Length).Where(k => inputs.TokenMask[k]).Select(k => (long)k).ToArray();
        var activeTargets = Array.ConvertAll(activeRows, k => inputs.TargetIds[k]);
        return new FusedRowPlan(activeRows, activeTargets, chunkRows, rows, workspaces, settings);
    }

    /// <summary>A <c>[rows, columns]</c> view of a named workspace buffer (contents undefined).</summary>
    public Tensor Workspace(string name, ScalarType type, Device device, long rows, long columns) =>
        _workspaces.Get(name, type, device, rows * columns).view(rows, columns);

    /// <summary>A <c>[rows]</c> tensor of ones from the workspaces.</summary>
    public Tensor Ones(long rows, ScalarType type, Device device) => _workspaces.Get("fused-ones", type, device, rows).fill_(HeldScalars.One);
}
