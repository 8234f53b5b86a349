using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>Where the fused output layer does the gradient work (see <see cref="FusedLinearPreferenceFunction"/>).</summary>
internal enum FusedGradientSchedule
{
    /// <summary>
    /// Chunks of whole groups: inside the forward pass each chunk's coefficients are known once its groups' NLLs are,
    /// so the gradient is formed while the chunk's logits are still in the workspace (three matmuls per row; a group
    /// larger than a chunk takes a second pass over its rows). The backward pass only rescales.
    /// </summary>
    GroupsInForward,

    /// <summary>The forward pass keeps only log-sum-exps; the backward pass recomputes every chunk's logits (four matmuls per row).</summary>
    RecomputeInBackward,
}

/// <summary>Where each row's gradient coefficient <c>g</c> is applied (measured; see docs/training.md).</summary>
internal enum CoefficientPlacement
{
    /// <summary>Scale the <c>[chunk, V]</c> rows in the softmax pass: <c>G = g * (softmax - onehot)</c>.</summary>
    LogitRows,

    /// <summary>Keep <c>softmax - onehot</c> unscaled and fold <c>g</c> into the <c>[chunk, H]</c> rows: <c>g * (P W)</c> and <c>Pᵀ (g * H)</c>.</summary>
    HiddenRows,
}

/// <summary>
/// The output projection and the per-token NLL fused, as an autograd function of <c>hidden [R, H]</c> and
/// <c>weight [V, H]</c>: logits <c>H Wᵀ</c> are formed one bounded chunk of rows at a time in a reused workspace and
/// never for the whole batch, and only for the rows in the loss (masked prompt tokens cost nothing). The output is
/// the token NLL <c>[R]</c> (0 on rows outside the loss); the group terms of the loss are ordinary autograd on it.
/// </summary>
/// <remarks>
/// Extra memory: one <c>[chunk, V]</c> logits workspace, <c>[chunk, H]</c> scratch and O(R) per-row values, besides
/// the gradients themselves. With <see cref="FusedGradientSchedule.GroupsInForward"/> the forward pass already
/// accumulates <c>grad_hidden = G W</c> and <c>grad_W = Gᵀ H</c> for the gradient the loss will ask for (the
/// coefficients come from autograd of the small group graph); if the backward pass brings a gradient that is not a
/// multiple of that one (for example through <see cref="PreferenceLossResult.ResponseNll"/>), it recomputes instead.
/// </remarks>
internal sealed class FusedLinearPreferenceFunction : torch.autograd.SingleTensorFunction<FusedLinearPreferenceFunction>
{
    private const string PlanKey = "plan";

    /// <summary>Relative residual below which an incoming gradient counts as a multiple of the precomputed one.</summary>
    private const double ProportionalTolerance = 1e-5;

    public override string Name => "StableAlignmentFusedLinearPreference";

    /// <summary>The token NLL <c>[R]</c> of <c>hidden @ weightᵀ</c> at the plan's targets.</summary>
    /// <param name="hidden">Final hidden states <c>[R, H]</c>.</param>
    /// <param name="weight">Output projection <c>[V, H]</c>.</param>
    /// <param name="activeRows">int64 <c>[A]</c>: the rows in the loss, in the plan's order, on the hidden states' device.</param>
    /// <param name="activeTargets">int64 <c>[A]</c>: their target ids.</param>
    /// <param name="plan">Chunking, row work and (for gradient in the forward pass) the coefficients.</param>
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
        var lse = torch.empty(active, accType, hidden.device);
        var nll = torch.empty(active, accType, hidden.device);
        Tensor? gradHidden = null, gradWeight = null, coefficients = null;

        if (plan.Schedule == FusedGradientSchedule.GroupsInForward)
        {
            var step = new GradientAccumulator(hidden, weight, plan);
            gradHidden = step.GradHidden;
            gradWeight = step.GradWeight;
            coefficients = torch.empty(active, accType, hidden.device);
            var tokenNll = torch.zeros(hidden.shape[0], accType, hidden.device);
            foreach (var pack in plan.Packs)
            {
                using var scope = torch.NewDisposeScope();
                // A pack holds whole groups: once its rows' NLLs are in, its coefficients are final.
                RowSpan[] spans = pack.Split ? plan.ChunksOf(pack.Rows) : [pack.Rows];
                foreach (var span in spans)
                {
                    var (_, logits) = plan.ChunkLogits(hidden, weight, activeRows, span);
                    plan.Rows.Forward(logits, activeTargets.narrow(0, span.Start, span.Length), lse.narrow(0, span.Start, span.Length), nll.narrow(0, span.Start, span.Length));
                }
                var packRows = activeRows.narrow(0, pack.Rows.Start, pack.Rows.Length);
                tokenNll.index_copy_(0, packRows, nll.narrow(0, pack.Rows.Start, pack.Rows.Length));
                var g = plan.Coefficients(tokenNll).index_select(0, packRows);
                coefficients.narrow(0, pack.Rows.Start, pack.Rows.Length).copy_(g);
                // Unsplit packs still have their logits in the workspace; split ones are recomputed chunk by chunk.
                foreach (var span in spans)
                    step.Add(activeRows, activeTargets, lse, coefficients, span, recompute: pack.Split);
            }
        }
        else
        {
            foreach (var span in plan.ChunksOf(new RowSpan(0, (int)active)))
            {
                using var scope = torch.NewDisposeScope();
                var (_, logits) = plan.ChunkLogits(hidden, weight, activeRows, span);
                plan.Rows.Forward(logits, activeTargets.narrow(0, span.Start, span.Length), lse.narrow(0, span.Start, span.Length), nll.narrow(0, span.Start, span.Length));
            }
        }

        ctx.save_for_backward([hidden, weight, activeRows, activeTargets, lse, coefficients!, gradHidden!, gradWeight!]);
        ctx.save_data(PlanKey, plan);
        return torch.zeros(hidden.shape[0], accType, hidden.device).index_copy_(0, activeRows, nll);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor hidden = saved[0], weight = saved[1], activeRows = saved[2], activeTargets = saved[3], lse = saved[4];
        Tensor? coefficients = Defined(saved[5]), gradHidden = Defined(saved[6]), gradWeight = Defined(saved[7]);
        var plan = (FusedRowPlan)ctx.get_data(PlanKey);
        using var incoming = gradOutput.index_select(0, activeRows).to(lse.dtype).contiguous();

        if (coefficients is not null && Multiple(incoming, coefficients) is double factor)
        {
            if (factor != 1)
            {
                gradHidden?.mul_(factor);
                gradWeight?.mul_(factor);
            }
        }
        else
        {
            gradHidden?.Dispose();
            gradWeight?.Dispose();
            var step = new GradientAccumulator(hidden, weight, plan);
            foreach (var span in plan.ChunksOf(new RowSpan(0, (int)activeRows.shape[0])))
            {
                using var scope = torch.NewDisposeScope();
                step.Add(activeRows, activeTargets, lse, incoming, span, recompute: true);
            }
            gradHidden = step.GradHidden;
            gradWeight = step.GradWeight;
        }

        foreach (var t in new[] { hidden, weight, activeRows, activeTargets, lse, coefficients }) t?.Dispose();
        return [gradHidden!, gradWeight!, null!, null!, null!];
    }

    private static Tensor? Defined(Tensor? t) => t is null || t.IsInvalid ? null : t;

    /// <summary>The factor <c>a</c> with <c>incoming = a * precomputed</c> within tolerance, or null when there is none.</summary>
    private static double? Multiple(Tensor incoming, Tensor precomputed)
    {
        using var scope = torch.NewDisposeScope();
        var norm = precomputed.dot(precomputed).ToDouble();
        var scale = incoming.abs().max().ToDouble();
        if (norm == 0) return scale == 0 ? 1.0 : null;
        var factor = incoming.dot(precomputed).ToDouble() / norm;
        var residual = (incoming - precomputed * factor).abs().max().ToDouble();
        return residual <= ProportionalTolerance * scale ? factor : null;
    }

    /// <summary>Turns chunks of logits into their gradient and adds <c>G W</c> and <c>Gᵀ H</c> to the gradients of the inputs that need one.</summary>
    private sealed class GradientAccumulator
    {
        private readonly Tensor _hidden, _weight;
        private readonly FusedRowPlan _plan;

        public GradientAccumulator(Tensor hidden, Tensor weight, FusedRowPlan plan)
        {
            (_hidden, _weight, _plan) = (hidden, weight, plan);
            GradHidden = plan.NeedsHiddenGradient ? torch.zeros_like(hidden) : null;
            GradWeight = plan.NeedsWeightGradient ? torch.zeros_like(weight) : null;
        }

        public Tensor? GradHidden { get; }

        public Tensor? GradWeight { get; }

        /// <param name="activeRows">Row index of each active row.</param>
        /// <param name="activeTargets">Target of each active row.</param>
        /// <param name="lse">Log-sum-exp of each active row.</param>
        /// <param name="coefficients">d(output)/d(token NLL) of each active row.</param>
        /// <param name="span">Which active rows.</param>
        /// <param name="recompute">Form the chunk's logits again (false: the workspace still holds them).</param>
        public void Add(Tensor activeRows, Tensor activeTargets, Tensor lse, Tensor coefficients, RowSpan span, bool recompute)
        {
            using var scope = torch.NewDisposeScope();
            var (h, logits) = recompute
                ? _plan.ChunkLogits(_hidden, _weight, activeRows, span)
                : _plan.ChunkLogitsInWorkspace(_hidden, activeRows, span, _weight.shape[0]);
            var g = coefficients.narrow(0, span.Start, span.Length);
            var fold = _plan.Placement == CoefficientPlacement.HiddenRows;
            var rowScale = fold ? _plan.Ones(span.Length, g.dtype, g.device) : g;
            _plan.Rows.Backward(logits, activeTargets.narrow(0, span.Start, span.Length), lse.narrow(0, span.Start, span.Length), rowScale, logits);
            var gCol = g.to(_hidden.dtype).unsqueeze(1);
            if (GradWeight is not null)
                GradWeight.addmm_(logits.t(), fold ? h * gCol : h, 1, 1);
            if (GradHidden is not null)
            {
                var rows = _plan.Workspace("fused-grad-hidden", _hidden.dtype, _hidden.device, span.Length, _hidden.shape[1]);
                rows.addmm_(logits, _weight, 0, 1);
                if (fold) rows.mul_(gCol);
                GradHidden.index_copy_(0, activeRows.narrow(0, span.Start, span.Length), rows);
            }
        }
    }
}

/// <summary>A consecutive range of active rows.</summary>
/// <param name="Start">First active row.</param>
/// <param name="Length">Number of rows.</param>
internal readonly record struct RowSpan(int Start, int Length);

/// <summary>Consecutive active rows holding whole groups; <paramref name="Split"/> when one group exceeds a chunk.</summary>
internal readonly record struct GroupPack(RowSpan Rows, bool Split);

/// <summary>
/// How <see cref="FusedLinearPreferenceFunction"/> walks a batch: the rows in the loss ordered by group (groups in
/// order, responses in batch order, tokens in order), their targets, the chunk size, packs of whole groups, and the
/// shared machinery (row work, workspaces, coefficients).
/// </summary>
internal sealed class FusedRowPlan
{
    private readonly LossWorkspaces _workspaces;

    /// <summary>How the function schedules its gradient work.</summary>
    /// <param name="Schedule">Gradient in the forward pass (whole-group chunks) or recomputed in the backward pass.</param>
    /// <param name="Placement">Where each row's coefficient is applied.</param>
    /// <param name="NeedsHiddenGradient">Whether to form <c>grad_hidden</c>.</param>
    /// <param name="NeedsWeightGradient">Whether to form <c>grad_W</c> (not for a frozen output layer).</param>
    /// <param name="Coefficients">d(loss)/d(token NLL) <c>[R]</c> for given token NLLs <c>[R]</c>; used by <see cref="FusedGradientSchedule.GroupsInForward"/>.</param>
    internal sealed record Settings(FusedGradientSchedule Schedule, CoefficientPlacement Placement, bool NeedsHiddenGradient, bool NeedsWeightGradient,
        Func<Tensor, Tensor> Coefficients);

    private FusedRowPlan(long[] activeRows, long[] activeTargets, GroupPack[] packs, int chunkRows, ILogitRowLoss rows, LossWorkspaces workspaces, Settings settings)
    {
        ActiveRows = activeRows;
        ActiveTargets = activeTargets;
        Packs = packs;
        ChunkRows = chunkRows;
        Rows = rows;
        _workspaces = workspaces;
        (Schedule, Placement, NeedsHiddenGradient, NeedsWeightGradient, Coefficients) = settings;
    }

    /// <summary>Row index <c>n·T + t</c> of every token in the loss, grouped by query.</summary>
    public long[] ActiveRows { get; }

    /// <summary>The target id of each active row.</summary>
    public long[] ActiveTargets { get; }

    /// <summary>Whole groups of at most <see cref="ChunkRows"/> rows each, or a single larger group.</summary>
    public IReadOnlyList<GroupPack> Packs { get; }

    /// <summary>Rows of logits formed at once.</summary>
    public int ChunkRows { get; }

    public ILogitRowLoss Rows { get; }

    public FusedGradientSchedule Schedule { get; }

    public CoefficientPlacement Placement { get; }

    public bool NeedsHiddenGradient { get; }

    public bool NeedsWeightGradient { get; }

    public Func<Tensor, Tensor> Coefficients { get; }

    /// <summary>Lays out the active rows of <paramref name="inputs"/> by group and packs whole groups into chunks of <paramref name="chunkRows"/>.</summary>
    public static FusedRowPlan Create(PreferenceInputs inputs, int chunkRows, ILogitRowLoss rows, LossWorkspaces workspaces, Settings settings)
    {
        var byGroup = new List<long>[inputs.GroupCount];
        for (var g = 0; g < byGroup.Length; g++) byGroup[g] = [];
        for (var i = 0; i < inputs.Responses; i++)
        {
            for (var j = 0; j < inputs.Tokens; j++)
            {
                var k = i * inputs.Tokens + j;
                if (inputs.TokenMask[k]) byGroup[inputs.GroupOf[i]].Add(k);
            }
        }

        var activeRows = byGroup.SelectMany(r => r).ToArray();
        var activeTargets = Array.ConvertAll(activeRows, k => inputs.TargetIds[k]);
        var packs = new List<GroupPack>();
        int start = 0, length = 0;
        foreach (var group in byGroup)
        {
            if (length > 0 && length + group.Count > chunkRows)
            {
                packs.Add(new GroupPack(new RowSpan(start, length), false));
                (start, length) = (start + length, 0);
            }
            length += group.Count;
            if (length > chunkRows)
            {
                packs.Add(new GroupPack(new RowSpan(start, length), true));
                (start, length) = (start + length, 0);
            }
        }
        if (length > 0) packs.Add(new GroupPack(new RowSpan(start, length), false));
        return new FusedRowPlan(activeRows, activeTargets, [.. packs], chunkRows, rows, workspaces, settings);
    }

    /// <summary>Splits <paramref name="span"/> into chunks of at most <see cref="ChunkRows"/> rows.</summary>
    public RowSpan[] ChunksOf(RowSpan span)
    {
        var chunks = new RowSpan[(span.Length + ChunkRows - 1) / ChunkRows];
        for (var c = 0; c < chunks.Length; c++)
        {
            var s = span.Start + c * ChunkRows;
            chunks[c] = new RowSpan(s, Math.Min(ChunkRows, span.Start + span.Length - s));
        }
        return chunks;
    }

    /// <summary>Gathers the span's hidden rows and forms their logits <c>h Wᵀ</c> in the logits workspace.</summary>
    public (Tensor Hidden, Tensor Logits) ChunkLogits(Tensor hidden, Tensor weight, Tensor activeRows, RowSpan span)
    {
        var (h, logits) = ChunkLogitsInWorkspace(hidden, activeRows, span, weight.shape[0]);
        logits.addmm_(h, weight.t(), 0, 1);
        return (h, logits);
    }

    /// <summary>The span's hidden rows and the logits workspace as the last <see cref="ChunkLogits"/> of the same span left it.</summary>
    public (Tensor Hidden, Tensor Logits) ChunkLogitsInWorkspace(Tensor hidden, Tensor activeRows, RowSpan span, long vocabulary)
    {
        var h = hidden.index_select(0, activeRows.narrow(0, span.Start, span.Length));
        return (h, Workspace("fused-logits", hidden.dtype, hidden.device, span.Length, vocabulary));
    }

    /// <summary>A <c>[rows, columns]</c> view of a named workspace buffer (contents undefined).</summary>
    public Tensor Workspace(string name, ScalarType type, Device device, long rows, long columns) =>
        _workspaces.Get(name, type, device, rows * columns).view(rows, columns);

    /// <summary>A <c>[rows]</c> tensor of ones from the workspaces.</summary>
    public Tensor Ones(long rows, ScalarType type, Device device) => _workspaces.Get("fused-ones", type, device, rows).fill_(1);
}
