using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>
/// Rotary position embeddings in the "rotate half" layout used by Hugging Face LLaMA/Qwen2 checkpoints:
/// channel <c>i</c> pairs with channel <c>i + d/2</c>, rotated by angle <c>position * theta^(-2i/d)</c>, with the
/// inverse frequency <c>theta^(-2i/d)</c> rescaled by <see cref="RopeScaling"/> when the checkpoint asks for it.
/// </summary>
internal static class RotaryEmbedding
{
    /// <summary>Cosines and sines <c>[T, d]</c> for positions <c>offset .. offset+T-1</c>.</summary>
    public static (Tensor Cos, Tensor Sin) Angles(long headDim, long offset, long length, double theta, ScalarType dtype, Device device, RopeScaling? scaling = null)
    {
        using var scope = NewDisposeScope();
        // Frequencies in float64 so long positions keep their precision before the cast.
        var invFreq = tensor(InverseFrequencies(headDim, theta, scaling), dtype: ScalarType.Float64, device: device);
        using var start = offset.ToScalar();
        using var end = (offset + length).ToScalar();
        var positions = arange(start, end, dtype: ScalarType.Float64, device: device);
        var freqs = outer(positions, invFreq);
        var emb = cat([freqs, freqs], -1);
        return (emb.cos().to_type(dtype).MoveToOuterDisposeScope(), emb.sin().to_type(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>The <c>d/2</c> inverse frequencies <c>theta^(-2i/d)</c>, times the scaling's ratio for each.</summary>
    public static double[] InverseFrequencies(long headDim, double theta, RopeScaling? scaling)
    {
        var inverse = new double[headDim / 2];
        for (var i = 0; i < inverse.Length; i++)
        {
            var f = Math.Pow(theta, -2.0 * i / headDim);
            inverse[i] = scaling is null ? f : f * scaling.FrequencyRatio(f);
        }
        return inverse;
    }

    /// <summary>Rotates <paramref name="x"/> <c>[B, H, T, d]</c> by the given angles <c>[T, d]</c>.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([-x2, x1], -1);
        return (x * cos).add(rotated * sin, HeldScalars.One).MoveToOuterDisposeScope();
    }
}
