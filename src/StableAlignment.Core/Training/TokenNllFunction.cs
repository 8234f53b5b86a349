using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// Per-token negative log-likelihood <c>logsumexp(x) - x[target]</c> over rows of a <c>[R, V]</c> logits matrix,
/// as an autograd function that works through the rows in chunks. The naive composition (log_softmax, gather)
/// materialises several <c>[R, V]</c> temporaries in the forward and backward passes; here the extra memory is
/// one float per row plus one bounded chunk, and the backward pass writes <c>grad_logits</c> directly as
/// <c>g * (softmax - onehot)</c> from the saved log-sum-exp.
/// </summary>
internal sealed class TokenNllFunction : torch.autograd.SingleTensorFunction<TokenNllFunction>
{
    // Elements per chunk: 4M floats (16 MB) keeps temporaries small while each op stays large enough to thread well.
    private const long ChunkElements = 4L << 20;

    public override string Name => "StableAlignmentTokenNll";

    /// <summary>Computes the token NLLs of <paramref name="logits"/> <c>[R, V]</c> at <paramref name="targets"/> <c>[R]</c>.</summary>
    /// <returns>A <c>[R]</c> tensor in the accumulation type (float64 for float64 logits, float32 otherwise).</returns>
    public static Tensor Apply(Tensor logits, Tensor targets) => apply(logits, targets);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var logits = (Tensor)vars[0];
        var targets = (Tensor)vars[1];
        long rows = logits.shape[0];
        var accType = AccumulationType(logits.dtype);
        var lse = torch.empty(rows, dtype: accType, device: logits.device);
        var nll = torch.empty(rows, dtype: accType, device: logits.device);
        ForEachChunk(logits, targets, accType, (r0, len, x, t) =>
        {
            var chunkLse = x.logsumexp(1);
            lse.narrow(0, r0, len).copy_(chunkLse);
            nll.narrow(0, r0, len).copy_(chunkLse - x.gather(1, t).squeeze(1));
        });
        ctx.save_for_backward([logits, targets, lse]);
        return nll;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor logits = saved[0], targets = saved[1], lse = saved[2];
        var accType = lse.dtype;
        var grad = torch.empty_like(logits);
        ForEachChunk(logits, targets, accType, (r0, len, x, t) =>
        {
            var g = gradOutput.narrow(0, r0, len).to(accType).unsqueeze(1);
            // softmax recomputed from the saved log-sum-exp, minus the one-hot target, scaled by the incoming gradient.
            var p = (x - lse.narrow(0, r0, len).unsqueeze(1)).exp_();
            p.scatter_add_(1, t, torch.full(len, 1, -1.0, dtype: accType, device: p.device));
            p.mul_(g);
            grad.narrow(0, r0, len).copy_(p);
        });
        foreach (var s in saved) s.Dispose();
        return [grad, null!];
    }

    internal static ScalarType AccumulationType(ScalarType logitsType) =>
        logitsType == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>
    /// Calls <paramref name="body"/> for consecutive row chunks with (first row, row count, the chunk's logits in the
    /// accumulation type, its targets as a column), inside a dispose scope so each chunk's temporaries are freed at once.
    /// </summary>
    private static void ForEachChunk(Tensor logits, Tensor targets, ScalarType accType, Action<long, long, Tensor, Tensor> body)
    {
        long rows = logits.shape[0];
        long chunk = Math.Max(1, ChunkElements / Math.Max(1, logits.shape[1]));
        for (long r0 = 0; r0 < rows; r0 += chunk)
        {
            using var scope = torch.NewDisposeScope();
            long len = Math.Min(chunk, rows - r0);
            body(r0, len, logits.narrow(0, r0, len).to(accType), targets.narrow(0, r0, len).unsqueeze(1));
        }
    }
}
