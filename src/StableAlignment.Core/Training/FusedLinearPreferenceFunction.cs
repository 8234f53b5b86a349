using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>Where the fused output layer does its gradient work (chosen by measurement, docs/training.md).</summary>
internal enum FusedGradientSchedule
{
    /// <summary>
    /// In the forward pass, while each chunk's logits are in the workspace: <c>P = softmax - onehot</c> unscaled, the
    /// hidden-state gradient rows <c>U = P W</c> (the backward pass scales row r by its coefficient, exactly for any
    /// incoming gradient), and for chunks of whole groups, whose coefficients are known once their NLLs are,
    /// <c>grad_W += Pᵀ (g * H)</c>. Only groups larger than a chunk are recomputed, for <c>grad_W</c> alone.
    /// </summary>
    FoldedInForward,

    /// <summary>The forward pass keeps only log-sum-exps; the backward pass recomputes every chunk's logits and forms <c>G = g * P</c>.</summary>
    RecomputeInBackward,
}

/// <summary>
/// The output projection and the per-token NLL fused, as an autograd function of <c>hidden [R, H]</c> and
/// <c>weight [V, H]</c>: logits <c>H Wᵀ</c> are formed one bounded chunk of rows at a time in a reused workspace and
/// never for the whole batch, and only for the rows in the loss (masked prompt tokens cost nothing). The output is
/// the token NLL <c>[R]</c> (0 on rows outside the loss); the group terms of the loss are ordinary autograd on it.
/// </summary>
/// <remarks>
/// Each row's gradient coefficient <c>g_r = d(out)/d(NLL_r)</c> is folded into <c>[chunk, H]</c> rows rather than into
/// the <c>[chunk, V]</c> block: <c>grad_hidden_r = g_r (P W)_r</c> and <c>grad_W = Pᵀ (g * H)</c>. Extra memory: the
/// <c>[chunk, V]</c> workspace, <c>[chunk, H]</c> scratch and O(R) per-row values, besides the gradients themselves.
/// With <see cref="FusedGradientSchedule.FoldedInForward"/>, <c>grad_W</c> of whole-group chunks is prepared for the
/// gradient the loss will ask for (coefficients from autograd of the small group graph); a backward pass that brings
/// a gradient that is not a multiple of it (for example through <see cref="PreferenceLossResult.ResponseNll"/>)
/// recomputes <c>grad_W</c> instead, so the result is exact either way.
/// </remarks>
internal sealed class FusedLinearPreferenceFunction : torch.autograd.SingleTensorFunction<FusedLinearPreferenceFunction>
{
    private const string PlanKey = "plan";

    /// <summary>Relative residual below which an incoming gradient counts as a multiple of the prepared one.</summary>
    private const double ProportionalTolerance = 1e-5;

    public override string Name => "StableAlignmentFusedLinearPreference";

    /// <summary>The token NLL <c>[R]</c> of <c>hidden @ weightᵀ</c> at the plan's targets.</summary>
    /// <param name="hidden">Final hidden states <c>[R, H]</c>.</param>
    /// <param name="weight">Output projection <c>[V, H]</c>.</param>
    /// <param name="activeRows">int64 <c>[A]</c>: the rows in the loss, in the plan's order, on the hidden states' device.</param>
    /// <param name="activeTargets">int64 <c>[A]</c>: their target ids.</param>
    /// <param name="plan">Chunking, row work and the coefficients.</param>
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
        Tensor? hiddenRows = null, gradWeight = null, coefficients = null;
        var folded = plan.Schedule == FusedGradientSchedule.FoldedInForward && (plan.NeedsHiddenGradient || plan.NeedsWeightGradient);
        if (!folded)
        {
            foreach (var span in plan.ChunksOf(new RowSpan(0, (int)active)))
            {
                using var scope = torch.NewDisposeScope();
                chunk.Logits(span);
                chunk.Forward(span, lse, nll);
            }
        }
        else
        {
            hiddenRows = plan.NeedsHiddenGradient ? torch.zeros_like(hidden) : null;
            gradWeight = plan.NeedsWeightGradient ? torch.zeros_like(weight) : null;
            coefficients = plan.NeedsWeightGradient ? torch.zeros(active, accType, hidden.device) : null;
            var tokenNll = plan.NeedsWeightGradient ? torch.zeros(hidden.shape[0], accType, hidden.device) : null;
            foreach (var pack in plan.Packs)
            {
                RowSpan[] spans = pack.Split ? plan.ChunksOf(pack.Rows) : [pack.Rows];
                foreach (var span in spans)
                {
                    using var scope = torch.NewDisposeScope();
                    var h = chunk.Logits(span);
                    chunk.Forward(span, lse, nll);
                    var p = chunk.SoftmaxMinusOneHot(span, lse, scale: null);
                    if (hiddenRows is not null) chunk.AddHiddenRows(span, p, hiddenRows);
                    if (gradWeight is null || pack.Split) continue;
                    // The span is the whole pack, i.e. whole groups: their coefficients are final now.
                    var rows = activeRows.narrow(0, span.Start, span.Length);
                    tokenNll!.index_copy_(0, rows, nll.narrow(0, span.Start, span.Length));
                    var g = plan.Coefficients(tokenNll).index_select(0, rows);
                    coefficients!.narrow(0, span.Start, span.Length).copy_(g);
                    ChunkWork.AddWeightRows(p, h, g, gradWeight);
                }
            }
        }

        ctx.save_for_backward([hidden, weight, activeRows, activeTargets, lse, hiddenRows!, gradWeight!, coefficients!]);
        ctx.save_data(PlanKey, plan);
        return torch.zeros(hidden.shape[0], accType, hidden.device).index_copy_(0, activeRows, nll);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor hidden = saved[0], weight = saved[1], activeRows = saved[2], activeTargets = saved[3], lse = saved[4];
        Tensor? hiddenRows = Defined(saved[5]), gradWeight = Defined(saved[6]), coefficients = Defined(saved[7]);
        var plan = (FusedRowPlan)ctx.get_data(PlanKey);
        var chunk = new ChunkWork(hidden, weight, activeRows, activeTargets, plan);
        using var incoming = gradOutput.index_select(0, activeRows).to(lse.dtype).contiguous();
        Tensor? gradHidden = null;

        if (hiddenRows is not null || gradWeight is not null)
        {
            // Prepared in the forward pass: hidden rows exactly (row r times its coefficient), grad_W when a multiple.
            if (hiddenRows is not null) gradHidden = hiddenRows.mul_(gradOutput.to(hidden.dtype).unsqueeze(1));
            if (gradWeight is not null)
            {
                var prepared = plan.Packs.Where(p => !p.Split).Select(p => p.Rows).ToArray();
                var factor = Multiple(incoming, coefficients!, prepared);
                if (factor is double a)
                {
                    if (a != 1) gradWeight.mul_(a);
                }
                else
                {
                    gradWeight.zero_();
                    prepared = [];
                }
                foreach (var pack in plan.Packs.Where(p => p.Split || !prepared.Contains(p.Rows)))
                {
                    foreach (var span in plan.ChunksOf(pack.Rows))
                    {
                        using var scope = torch.NewDisposeScope();
                        var h = chunk.Logits(span);
                        var g = chunk.SoftmaxMinusOneHot(span, lse, incoming);
                        gradWeight.addmm_(g.t(), h, 1, 1);
                    }
                }
            }
        }
        else if (plan.NeedsHiddenGradient || plan.NeedsWeightGradient)
        {
            gradHidden = plan.NeedsHiddenGradient ? torch.zeros_like(hidden) : null;
            gradWeight = plan.NeedsWeightGradient ? torch.zeros_like(weight) : null;
            foreach (var span in plan.ChunksOf(new RowSpan(0, (int)activeRows.shape[0])))
            {
                using var scope = torch.NewDisposeScope();
                var h = chunk.Logits(span);
                var g = chunk.SoftmaxMinusOneHot(span, lse, incoming);
                if (gradHidden is not null) chunk.AddHiddenRows(span, g, gradHidden);
                gradWeight?.addmm_(g.t(), h, 1, 1);
            }
        }

        foreach (var t in new[] { hidden, weight, activeRows, activeTargets, lse, coefficients }) t?.Dispose();
        return [gradHidden!, gradWeight!, null!, null!, null!];
    }

    private static Tensor? Defined(Tensor? t) => t is null || t.IsInvalid ? null : t;

    /// <summary>The factor <c>a</c> with <c>incoming = a * prepared</c> on the given spans within tolerance, or null when there is none.</summary>
    private static double? Multiple(Tensor incoming, Tensor prepared, RowSpan[] spans)
    {
        if (spans.Length == 0) return 1.0;
        using var scope = torch.NewDisposeScope();
        var x = torch.cat(spans.Select(s => incoming.narrow(0, s.Start, s.Length)).ToArray());
        var y = torch.cat(spans.Select(s => prepared.narrow(0, s.Start, s.Length)).ToArray());
        var norm = y.dot(y).ToDouble();
        var scale = x.abs().max().ToDouble();
        if (norm == 0) return scale == 0 ? 1.0 : null;
        var factor = x.dot(y).ToDouble() / norm;
        var residual = (x - y * factor).abs().max().ToDouble();
        return residual <= ProportionalTolerance * scale ? factor : null;
    }

    /// <summary>The per-chunk steps on one batch: logits in the workspace, row work, and the two gradient products.</summary>
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

        /// <summary><c>grad_W += pᵀ (g * h)</c>: the coefficients folded into the <c>[chunk, H]</c> hidden rows.</summary>
        public static void AddWeightRows(Tensor p, Tensor h, Tensor g, Tensor gradWeight) =>
            gradWeight.addmm_(p.t(), h * g.to(h.dtype).unsqueeze(1), 1, 1);

        private Tensor Rows(RowSpan span) => activeRows.narrow(0, span.Start, span.Length);

        private Tensor Targets(RowSpan span) => activeTargets.narrow(0, span.Start, span.Length);
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
    /// <param name="Schedule">Gradient work folded into the forward pass or recomputed in the backward pass.</param>
    /// <param name="NeedsHiddenGradient">Whether to form <c>grad_hidden</c>.</param>
    /// <param name="NeedsWeightGradient">Whether to form <c>grad_W</c> (not for a frozen output layer).</param>
    /// <param name="Coefficients">d(loss)/d(token NLL) <c>[R]</c> for given token NLLs <c>[R]</c>; used by <see cref="FusedGradientSchedule.FoldedInForward"/>.</param>
    internal sealed record Settings(FusedGradientSchedule Schedule, bool NeedsHiddenGradient, bool NeedsWeightGradient, Func<Tensor, Tensor> Coefficients);

    private FusedRowPlan(long[] activeRows, long[] activeTargets, GroupPack[] packs, int chunkRows, ILogitRowLoss rows, LossWorkspaces workspaces, Settings settings)
    {
        ActiveRows = activeRows;
        ActiveTargets = activeTargets;
        Packs = packs;
        ChunkRows = chunkRows;
        Rows = rows;
        _workspaces = workspaces;
        (Schedule, NeedsHiddenGradient, NeedsWeightGradient, Coefficients) = settings;
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

    /// <summary>A <c>[rows, columns]</c> view of a named workspace buffer (contents undefined).</summary>
    public Tensor Workspace(string name, ScalarType type, Device device, long rows, long columns) =>
        _workspaces.Get(name, type, device, rows * columns).view(rows, columns);

    /// <summary>A <c>[rows]</c> tensor of ones from the workspaces.</summary>
    public Tensor Ones(long rows, ScalarType type, Device device) => _workspaces.Get("fused-ones", type, device, rows).fill_(1);
}
