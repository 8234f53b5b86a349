using System.Text;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// DPO's frozen reference policy <c>pi_ref</c>: a model whose summed response NLLs are computed without gradients and
/// cached per distinct row, so each response is scored once for the whole run however many epochs see it (what TRL's
/// <c>precompute_ref_log_probs</c> achieves), and a batch costs a reference forward pass only for rows not seen before.
/// </summary>
/// <remarks>
/// A row is identified by its tokens up to its last loss token and by which of them are in the loss, so the cache
/// never confuses a response with the same text under another prompt. Right padding does not change a row's NLL
/// (causal attention hides it), so a row scored in one batch is valid in any other.
/// </remarks>
public sealed class ReferenceModel : IDisposable
{
    private readonly Lazy<CausalLanguageModel> _model;
    private readonly bool _ownsModel;
    private readonly Dictionary<string, float> _cache = new(StringComparer.Ordinal);

    /// <summary>Wraps a model as the frozen reference: its parameters stop requiring gradients and it runs in eval mode.</summary>
    /// <param name="model">The reference model, for example the model after the SFT phase.</param>
    /// <param name="ownsModel">Whether disposing this reference disposes the model.</param>
    public ReferenceModel(CausalLanguageModel model, bool ownsModel = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = new Lazy<CausalLanguageModel>(Freeze(model));
        _ownsModel = ownsModel;
    }

    private ReferenceModel(Func<CausalLanguageModel> load)
    {
        _model = new Lazy<CausalLanguageModel>(() => Freeze(load()));
        _ownsModel = true;
    }

    /// <summary>
    /// The reference held in a checkpoint written by <see cref="CausalLanguageModel.SaveCheckpoint"/>, loaded when it
    /// is first needed: it may name the snapshot of a stage of the same run (<see cref="TrainerOptions.StageSnapshots"/>),
    /// which the trainer writes before the next stage starts.
    /// </summary>
    /// <param name="checkpointDirectory">The checkpoint folder.</param>
    /// <returns>The reference, owning the model it loads.</returns>
    public static ReferenceModel FromCheckpoint(string checkpointDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointDirectory);
        return new ReferenceModel(() => CausalLanguageModel.LoadCheckpoint(checkpointDirectory));
    }

    private static CausalLanguageModel Freeze(CausalLanguageModel model)
    {
        // A lazily loaded model is created inside whatever dispose scope the first batch runs in (a training step's);
        // its weights must outlive that scope.
        foreach (var b in model.buffers()) b.DetachFromDisposeScope();
        foreach (var p in model.parameters())
        {
            p.DetachFromDisposeScope();
            p.requires_grad = false;
        }
        model.eval();
        return model;
    }

    /// <summary>Distinct rows scored so far.</summary>
    public int CachedRows => _cache.Count;

    /// <summary>Each row's summed NLL of its loss tokens under the reference, <c>[N]</c> float32 on the CPU.</summary>
    /// <param name="batch">The batch (its input ids, targets and loss mask are read).</param>
    /// <returns>The reference NLLs, by row.</returns>
    /// <exception cref="ArgumentException">A row has no token in the loss.</exception>
    public Tensor ResponseNll(PreferenceBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int n = (int)batch.InputIds.shape[0], t = (int)batch.InputIds.shape[1];
        long[] ids = Host<long>(batch.InputIds, ScalarType.Int64);
        long[] targets = Host<long>(batch.Targets, ScalarType.Int64);
        bool[] mask = Host<bool>(batch.LossMask, ScalarType.Bool);
        var keys = new string[n];
        var missing = new List<int>();
        var pending = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            keys[i] = Key(ids, targets, mask, i, t) ?? throw new ArgumentException($"Row {i} of the batch has no token in the loss.", nameof(batch));
            if (!_cache.ContainsKey(keys[i]) && pending.Add(keys[i])) missing.Add(i);
        }
        if (missing.Count > 0) Score(batch, missing, keys, targets, mask, t);
        return torch.tensor(keys.Select(k => _cache[k]).ToArray());
    }

    private void Score(PreferenceBatch batch, List<int> rows, string[] keys, long[] batchTargets, bool[] mask, int t)
    {
        var model = _model.Value;
        var device = model.parameters().First().device;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var index = torch.tensor(rows.Select(r => (long)r).ToArray());
        var logits = model.forward(batch.InputIds.index_select(0, index).to(device));
        var targets = new long[rows.Count * t];
        var weights = new float[rows.Count * t];
        for (int r = 0; r < rows.Count; r++)
        {
            for (int j = 0; j < t; j++)
            {
                int k = rows[r] * t + j;
                // Only loss positions count; the others point at token 0 with weight 0.
                if (!mask[k]) continue;
                targets[r * t + j] = batchTargets[k];
                weights[r * t + j] = 1;
            }
        }
        var tokenNll = TokenNllFunction.Apply(logits.reshape(rows.Count * (long)t, logits.shape[2]), torch.tensor(targets, device: device), TokenNllFunction.Settings.TorchOps);
        var sums = (tokenNll.view(rows.Count, t) * torch.tensor(weights, device: device).view(rows.Count, t)).sum(1).to(ScalarType.Float32).cpu();
        float[] values = sums.data<float>().ToArray();
        for (int r = 0; r < rows.Count; r++) _cache[keys[rows[r]]] = values[r];
    }

    // What a row's NLL depends on: its ids up to its last loss position, and the target at each loss position.
    private static string? Key(long[] ids, long[] targets, bool[] mask, int row, int t)
    {
        int last = -1;
        for (int j = 0; j < t; j++) if (mask[row * t + j]) last = j;
        if (last < 0) return null;
        var sb = new StringBuilder(12 * (last + 1));
        for (int j = 0; j <= last; j++)
        {
            sb.Append(ids[row * t + j]);
            if (mask[row * t + j]) sb.Append('>').Append(targets[row * t + j]);
            sb.Append(',');
        }
        return sb.ToString();
    }

    private static T[] Host<T>(Tensor tensor, ScalarType type) where T : unmanaged
    {
        using var host = tensor.detach().to(type, CPU).contiguous();
        return host.data<T>().ToArray();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsModel && _model.IsValueCreated) _model.Value.Dispose();
    }
}
