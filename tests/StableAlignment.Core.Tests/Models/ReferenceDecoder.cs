using StableAlignment.Core.Models;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// An independent float64 oracle of the LLaMA decoder, written with plain loops over weight arrays named as in
/// Hugging Face checkpoints. It shares no code with the TorchSharp model. As in transformers, a projection has a bias
/// exactly when its <c>.bias</c> weight exists; <paramref name="inverseFrequency"/> (default <c>theta^(-2i/d)</c>) is
/// where a test puts transformers' rope-scaling rules.
/// </summary>
internal sealed class ReferenceDecoder(CausalLanguageModelConfig config, IReadOnlyDictionary<string, double[]> weights, Func<int, double>? inverseFrequency = null)
{
    private double[] W(string name) => weights.TryGetValue(name, out var w) ? w : throw new KeyNotFoundException(name);

    private double[]? OptionalW(string name) => weights.TryGetValue(name, out var w) ? w : null;

    public static double[] RmsNorm(double[] x, double[] weight, double eps)
    {
        var ms = 0.0;
        foreach (var v in x) ms += v * v;
        ms /= x.Length;
        var inv = 1.0 / Math.Sqrt(ms + eps);
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = x[i] * inv * weight[i];
        return y;
    }

    /// <summary>y = W x (+ b) with W stored row-major [out, in].</summary>
    public static double[] Linear(double[] x, double[] w, double[]? b, int outputs)
    {
        var inputs = x.Length;
        var y = new double[outputs];
        for (var o = 0; o < outputs; o++)
        {
            var s = b?[o] ?? 0.0;
            for (var i = 0; i < inputs; i++) s += w[o * inputs + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    /// <summary>Rotates one head vector at <paramref name="position"/> in the rotate-half layout.</summary>
    public static double[] Rope(double[] head, long position, double theta, Func<int, double>? inverseFrequency = null)
    {
        var d = head.Length;
        var half = d / 2;
        var y = new double[d];
        for (var i = 0; i < half; i++)
        {
            var angle = position * (inverseFrequency?.Invoke(i) ?? Math.Pow(theta, -2.0 * i / d));
            double a = head[i], b = head[i + half];
            y[i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            y[i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
        return y;
    }

    /// <summary>Causal grouped-query attention over per-position q [T][H*d], k, v [T][Hkv*d] (already rotated).</summary>
    public static double[][] Attention(double[][] q, double[][] k, double[][] v, int heads, int kvHeads, int d)
    {
        var t = q.Length;
        var output = new double[t][];
        for (var i = 0; i < t; i++)
        {
            output[i] = new double[heads * d];
            for (var h = 0; h < heads; h++)
            {
                var g = h / (heads / kvHeads);
                var scores = new double[i + 1];
                var max = double.NegativeInfinity;
                for (var s = 0; s <= i; s++)
                {
                    var dot = 0.0;
                    for (var c = 0; c < d; c++) dot += q[i][h * d + c] * k[s][g * d + c];
                    scores[s] = dot / Math.Sqrt(d);
                    max = Math.Max(max, scores[s]);
                }
                var z = 0.0;
                for (var s = 0; s <= i; s++) z += scores[s] = Math.Exp(scores[s] - max);
                for (var s = 0; s <= i; s++)
                    for (var c = 0; c < d; c++)
                        output[i][h * d + c] += scores[s] / z * v[s][g * d + c];
            }
        }
        return output;
    }

    private double[] Rotate(double[] projected, int heads, int d, long position, double theta)
    {
        var y = new double[projected.Length];
        for (var h = 0; h < heads; h++)
            Array.Copy(Rope(projected[(h * d)..((h + 1) * d)], position, theta, inverseFrequency), 0, y, h * d, d);
        return y;
    }

    /// <summary>Logits [T][V] of one token sequence.</summary>
    public double[][] Logits(IReadOnlyList<long> tokens)
    {
        var c = config;
        int d = c.HeadDim, t = tokens.Count;
        var embed = W("model.embed_tokens.weight");
        var x = new double[t][];
        for (var i = 0; i < t; i++) x[i] = embed[(int)(tokens[i] * c.HiddenSize)..(int)((tokens[i] + 1) * c.HiddenSize)];

        for (var l = 0; l < c.NumLayers; l++)
        {
            var p = $"model.layers.{l}.";
            double[]? Bias(string n) => OptionalW(p + n + ".bias");
            var q = new double[t][];
            var k = new double[t][];
            var v = new double[t][];
            for (var i = 0; i < t; i++)
            {
                var h = RmsNorm(x[i], W(p + "input_layernorm.weight"), c.RmsNormEpsilon);
                q[i] = Rotate(Linear(h, W(p + "self_attn.q_proj.weight"), Bias("self_attn.q_proj"), c.NumHeads * d), c.NumHeads, d, i, c.RopeTheta);
                k[i] = Rotate(Linear(h, W(p + "self_attn.k_proj.weight"), Bias("self_attn.k_proj"), c.NumKeyValueHeads * d), c.NumKeyValueHeads, d, i, c.RopeTheta);
                v[i] = Linear(h, W(p + "self_attn.v_proj.weight"), Bias("self_attn.v_proj"), c.NumKeyValueHeads * d);
            }
            var attended = Attention(q, k, v, c.NumHeads, c.NumKeyValueHeads, d);
            for (var i = 0; i < t; i++)
            {
                var o = Linear(attended[i], W(p + "self_attn.o_proj.weight"), Bias("self_attn.o_proj"), c.HiddenSize);
                var r = new double[c.HiddenSize];
                for (var j = 0; j < r.Length; j++) r[j] = x[i][j] + o[j];
                var h2 = RmsNorm(r, W(p + "post_attention_layernorm.weight"), c.RmsNormEpsilon);
                var gate = Linear(h2, W(p + "mlp.gate_proj.weight"), Bias("mlp.gate_proj"), c.IntermediateSize);
                var up = Linear(h2, W(p + "mlp.up_proj.weight"), Bias("mlp.up_proj"), c.IntermediateSize);
                for (var j = 0; j < gate.Length; j++) gate[j] = gate[j] / (1 + Math.Exp(-gate[j])) * up[j];
                var down = Linear(gate, W(p + "mlp.down_proj.weight"), Bias("mlp.down_proj"), c.HiddenSize);
                for (var j = 0; j < r.Length; j++) r[j] += down[j];
                x[i] = r;
            }
        }

        var head = c.TieWordEmbeddings ? embed : W("lm_head.weight");
        return x.Select(row => Linear(RmsNorm(row, W("model.norm.weight"), c.RmsNormEpsilon), head, null, c.VocabSize)).ToArray();
    }
}
