using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace StableAlignment.Core.Training;

/// <summary>
/// The per-row loss work on a block of logits <c>[rows, V]</c>, shared by the loss on materialised logits and by the
/// fused output layer: the forward pass gives each row's log-sum-exp and token NLL <c>lse - x[target]</c>; the
/// backward pass writes <c>scale * (softmax - onehot(target))</c>, possibly over the logits themselves.
/// </summary>
/// <remarks>
/// Logits are contiguous float32, bfloat16 or float64; <c>lse</c>, <c>tokenNll</c> and <c>scale</c> are <c>[rows]</c>
/// tensors of the accumulation type (float64 for float64 logits, float32 otherwise) on the logits' device; targets
/// are int64 <c>[rows]</c> and must be valid token ids (masked rows carry a placeholder and a scale of 0).
/// </remarks>
internal interface ILogitRowLoss
{
    /// <summary>Fills <paramref name="lse"/> and <paramref name="tokenNll"/> for every row of <paramref name="logits"/>.</summary>
    void Forward(Tensor logits, Tensor targets, Tensor lse, Tensor tokenNll);

    /// <summary>
    /// Writes <c>scale[r] * (softmax(logits[r]) - onehot(targets[r]))</c> into <paramref name="gradient"/>, which has the
    /// logits' shape and type and may be <paramref name="logits"/> itself; rows with scale 0 become 0.
    /// </summary>
    void Backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, Tensor gradient);
}

/// <summary>Which implementation does the per-row work; <see cref="Auto"/> picks by device.</summary>
internal enum LogitRowBackend
{
    /// <summary>Host kernels on the CPU, the CUDA kernels on a GPU where available, TorchSharp operations elsewhere.</summary>
    Auto,

    /// <summary>TorchSharp operations on any device (the fallback; also forced by tests).</summary>
    TorchOps,
}

/// <summary>
/// <see cref="ILogitRowLoss"/> on CPU tensors through vectorised span kernels (<c>TensorPrimitives</c>), rows split
/// over the cores. Each row is processed in L1-sized blocks, so the two passes of the forward (max, then sum of
/// exponentials) and the three of the backward (subtract, exp, scale) read memory once per row; bfloat16 rows are
/// widened into a float32 workspace. Measured on a 2-core EPYC VM at 2048 x 32,000 float32: forward 40 ms and
/// backward 30 ms, against 100-400 ms and 85 ms for the same work in TorchSharp operations.
/// </summary>
internal sealed unsafe class HostLogitRowLoss(LossWorkspaces workspaces) : ILogitRowLoss
{
    /// <summary>Elements per pass over a row: 16 KB of float32 stays in L1 between passes.</summary>
    private const int Block = 4096;

    /// <summary>bfloat16 rows are widened this many elements at a time (16 MB of float32).</summary>
    private const long WideningElements = 4L << 20;

    /// <summary>Below this many elements a block is not worth splitting over threads.</summary>
    private const long ParallelThreshold = 1L << 16;

    public void Forward(Tensor logits, Tensor targets, Tensor lse, Tensor tokenNll)
    {
        int rows = (int)logits.shape[0], vocab = (int)logits.shape[1];
        var t = (long*)TensorStaging.DataPointer(targets);
        switch (logits.dtype)
        {
            case ScalarType.Float32:
                ForwardRows((float*)TensorStaging.DataPointer(logits), rows, vocab, t, (float*)TensorStaging.DataPointer(lse), (float*)TensorStaging.DataPointer(tokenNll));
                break;
            case ScalarType.Float64:
                ForwardRows((double*)TensorStaging.DataPointer(logits), rows, vocab, t, (double*)TensorStaging.DataPointer(lse), (double*)TensorStaging.DataPointer(tokenNll));
                break;
            default:
                WidenedInChunks(logits, (r0, len, wide) => ForwardRows((float*)TensorStaging.DataPointer(wide), len, vocab, t + r0,
                    (float*)TensorStaging.DataPointer(lse) + r0, (float*)TensorStaging.DataPointer(tokenNll) + r0));
                break;
        }
    }

    public void Backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, Tensor gradient)
    {
        int rows = (int)logits.shape[0], vocab = (int)logits.shape[1];
        var t = (long*)TensorStaging.DataPointer(targets);
        switch (logits.dtype)
        {
            case ScalarType.Float32:
                BackwardRows((float*)TensorStaging.DataPointer(logits), (float*)TensorStaging.DataPointer(gradient), rows, vocab, t,
                    (float*)TensorStaging.DataPointer(lse), (float*)TensorStaging.DataPointer(scale));
                break;
            case ScalarType.Float64:
                BackwardRows((double*)TensorStaging.DataPointer(logits), (double*)TensorStaging.DataPointer(gradient), rows, vocab, t,
                    (double*)TensorStaging.DataPointer(lse), (double*)TensorStaging.DataPointer(scale));
                break;
            default:
                WidenedInChunks(logits, (r0, len, wide) =>
                {
                    var p = (float*)TensorStaging.DataPointer(wide);
                    BackwardRows(p, p, len, vocab, t + r0, (float*)TensorStaging.DataPointer(lse) + r0, (float*)TensorStaging.DataPointer(scale) + r0);
                    gradient.narrow(0, r0, len).copy_(wide); // narrows back to bfloat16
                });
                break;
        }
    }

    /// <summary>Calls <paramref name="body"/> with consecutive row ranges of <paramref name="logits"/> copied into a float32 workspace.</summary>
    private void WidenedInChunks(Tensor logits, Action<int, int, Tensor> body)
    {
        int rows = (int)logits.shape[0], vocab = (int)logits.shape[1];
        var chunk = (int)Math.Clamp(WideningElements / vocab, 1, rows);
        var buffer = workspaces.Get("widened-logits", ScalarType.Float32, logits.device, (long)chunk * vocab);
        for (var r0 = 0; r0 < rows; r0 += chunk)
        {
            var len = Math.Min(chunk, rows - r0);
            using var wide = buffer.narrow(0, 0, (long)len * vocab).view(len, vocab);
            wide.copy_(logits.narrow(0, r0, len));
            body(r0, len, wide);
        }
    }

    private static void ForwardRows<T>(T* logits, int rows, int vocab, long* targets, T* lse, T* tokenNll)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForEachRowRange(rows, vocab, (first, end) =>
        {
            Span<T> scratch = stackalloc T[Math.Min(Block, vocab)];
            for (var r = first; r < end; r++)
            {
                var row = new ReadOnlySpan<T>(logits + (long)r * vocab, vocab);
                var l = LogSumExp(row, scratch);
                lse[r] = l;
                tokenNll[r] = l - row[(int)targets[r]];
            }
        });
    }

    private static void BackwardRows<T>(T* logits, T* gradient, int rows, int vocab, long* targets, T* lse, T* scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForEachRowRange(rows, vocab, (first, end) =>
        {
            for (var r = first; r < end; r++)
            {
                var x = new ReadOnlySpan<T>(logits + (long)r * vocab, vocab);
                var g = new Span<T>(gradient + (long)r * vocab, vocab);
                var s = scale[r];
                if (s == T.Zero)
                {
                    g.Clear();
                    continue;
                }
                var l = lse[r];
                // Block by block so that x, exp and the scaling meet the same cache lines; g may alias x exactly.
                for (var o = 0; o < vocab; o += Block)
                {
                    var len = Math.Min(Block, vocab - o);
                    var gs = g.Slice(o, len);
                    TensorPrimitives.Subtract(x.Slice(o, len), l, gs);
                    TensorPrimitives.Exp<T>(gs, gs);
                    if (s != T.One) TensorPrimitives.Multiply(gs, s, gs); // unscaled rows (folded coefficients) skip the pass
                }
                g[(int)targets[r]] -= s;
            }
        });
    }

    /// <summary>log(sum(exp(row))) with the maximum subtracted first; partial sums in float64.</summary>
    private static T LogSumExp<T>(ReadOnlySpan<T> row, Span<T> scratch) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var max = TensorPrimitives.Max(row);
        // A row of -inf has lse -inf (as torch's logsumexp); NaN propagates so the trainer's guard sees it.
        if (!T.IsFinite(max)) return max;
        double sum = 0;
        for (var o = 0; o < row.Length; o += scratch.Length)
        {
            var len = Math.Min(scratch.Length, row.Length - o);
            var s = scratch[..len];
            TensorPrimitives.Subtract(row.Slice(o, len), max, s);
            TensorPrimitives.Exp<T>(s, s);
            sum += double.CreateTruncating(TensorPrimitives.Sum<T>(s));
        }
        return max + T.CreateTruncating(Math.Log(sum));
    }

    /// <summary>Splits rows into one contiguous range per thread (TorchSharp's thread count), or runs them inline when small.</summary>
    private static void ForEachRowRange(int rows, int vocab, Action<int, int> body)
    {
        var workers = (int)Math.Clamp((long)rows * vocab / ParallelThreshold, 1, Math.Min(rows, Math.Max(1, torch.get_num_threads())));
        if (workers == 1)
        {
            body(0, rows);
            return;
        }
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            body((int)((long)rows * w / workers), (int)((long)rows * (w + 1) / workers)));
    }
}

/// <summary>
/// <see cref="ILogitRowLoss"/> in TorchSharp operations, chunk by chunk (16 MB of logits at a time), on any device.
/// The backward pass works in place in the gradient: <c>exp(x - lse) * scale</c>, then the target columns.
/// </summary>
internal sealed class TorchLogitRowLoss : ILogitRowLoss
{
    private const long ChunkElements = 4L << 20;

    public void Forward(Tensor logits, Tensor targets, Tensor lse, Tensor tokenNll)
    {
        var accType = lse.dtype;
        ForEachChunk(logits, (r0, len) =>
        {
            var x = logits.narrow(0, r0, len).to(accType);
            var chunkLse = x.logsumexp(1);
            lse.narrow(0, r0, len).copy_(chunkLse);
            tokenNll.narrow(0, r0, len).copy_(chunkLse - x.gather(1, targets.narrow(0, r0, len).unsqueeze(1)).squeeze(1));
        });
    }

    public void Backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, Tensor gradient)
    {
        var accType = lse.dtype;
        ForEachChunk(logits, (r0, len) =>
        {
            var s = scale.narrow(0, r0, len).unsqueeze(1);
            var g = gradient.narrow(0, r0, len);
            var p = g.dtype == accType ? g : torch.empty([len, logits.shape[1]], accType, logits.device);
            p.copy_(logits.narrow(0, r0, len));
            p.sub_(lse.narrow(0, r0, len).unsqueeze(1)).exp_().mul_(s);
            p.scatter_add_(1, targets.narrow(0, r0, len).unsqueeze(1), -s);
            if (!ReferenceEquals(p, g)) g.copy_(p);
        });
    }

    private static void ForEachChunk(Tensor logits, Action<long, long> body)
    {
        long rows = logits.shape[0];
        var chunk = Math.Max(1, ChunkElements / Math.Max(1, logits.shape[1]));
        for (long r0 = 0; r0 < rows; r0 += chunk)
        {
            using var scope = torch.NewDisposeScope();
            body(r0, Math.Min(chunk, rows - r0));
        }
    }
}
