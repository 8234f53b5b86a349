using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

// LoRA adapters (PEFT's definition and file layout) on the model's attention and MLP projections.
public sealed partial class CausalLanguageModel
{
    /// <summary>The adapters' options, or null for a plain model.</summary>
    public LoraOptions? Lora { get; private set; }

    /// <summary>
    /// Wraps the projections named in <see cref="LoraOptions.TargetModules"/> with LoRA adapters and freezes every
    /// other parameter, so an optimiser over <c>parameters().Where(p =&gt; p.requires_grad)</c> (what
    /// <c>StableAlignmentTrainer</c> uses) keeps state only for the adapters. A new adapter changes no logit: B starts at zero.
    /// </summary>
    /// <param name="options">The adapter settings; validated here.</param>
    /// <param name="seed">Seed of A's Kaiming-uniform initialisation, drawn from a generator of this seed (torch's global generator is seeded with it too); null draws from torch's global generator.</param>
    /// <exception cref="InvalidOperationException">The model already has adapters.</exception>
    public void AddLoraAdapters(LoraOptions options, long? seed = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (Lora is not null) throw new InvalidOperationException("The model already has LoRA adapters; merge them (MergeAdapters) before adding others.");
        using var generator = InitialisationGenerator(seed);
        foreach (var p in parameters()) p.requires_grad = false;
        var targets = options.TargetModules.ToHashSet(StringComparer.Ordinal);
        nn.Module<Tensor, Tensor> Wrap(string name, nn.Module<Tensor, Tensor> module)
        {
            if (!targets.Contains(name) || module is not Linear linear) return module;
            var adapted = new LoraLinear(linear, options, generator);
            // New modules start in training mode; the adapter's dropout must follow the model's mode.
            adapted.train(training);
            linear.Dispose();
            return adapted;
        }
        foreach (var layer in DecoderLayers)
        {
            layer.Attention.ReplaceProjections(Wrap);
            layer.Mlp.ReplaceProjections(Wrap);
        }
        Lora = options;
    }

    /// <summary>
    /// Folds every adapter into its base weight (<c>W + scaling * B A</c>) and removes the adapters, leaving a plain
    /// model whose parameters are all trainable again. Logits before and after agree to float rounding.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no adapters.</exception>
    public void MergeAdapters()
    {
        if (Lora is null) throw new InvalidOperationException("The model has no LoRA adapters to merge.");
        static nn.Module<Tensor, Tensor> Merge(string name, nn.Module<Tensor, Tensor> module)
        {
            if (module is not LoraLinear lora) return module;
            var merged = lora.ToMergedLinear();
            lora.Dispose();
            return merged;
        }
        foreach (var layer in DecoderLayers)
        {
            layer.Attention.ReplaceProjections(Merge);
            layer.Mlp.ReplaceProjections(Merge);
        }
        foreach (var p in parameters()) p.requires_grad = true;
        Lora = null;
    }

    /// <summary>The adapted projections with their module paths (<c>model.layers.0.self_attn.q_proj</c>), in model order.</summary>
    internal IReadOnlyList<(string Name, LoraLinear Layer)> LoraLayers() =>
        [.. named_modules().Where(m => m.module is LoraLinear).Select(m => (m.name, (LoraLinear)m.module))];

    /// <summary>
    /// Writes the adapter in PEFT's layout: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> with keys
    /// <c>base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight</c> <c>[r, in]</c> and <c>lora_B</c> <c>[out, r]</c>.
    /// </summary>
    /// <param name="directory">Target folder, created when missing.</param>
    /// <param name="dtype">F32 (default), F16 or BF16.</param>
    /// <param name="baseModelNameOrPath">What PEFT records as <c>base_model_name_or_path</c> (a hub id or a folder); may be null.</param>
    /// <exception cref="InvalidOperationException">The model has no adapters.</exception>
    public void SaveLoraAdapter(string directory, ExportDType dtype = ExportDType.F32, string? baseModelNameOrPath = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var options = Lora ?? throw new InvalidOperationException("The model has no LoRA adapters to save.");
        Directory.CreateDirectory(directory);
        var entries = new List<SafetensorsEntry>();
        foreach (var (name, layer) in LoraLayers())
        {
            var l = layer;
            entries.Add(new(PeftAdapterFiles.KeyPrefix + name + ".lora_A.weight", [l.Rank, l.InFeatures], () => l.A.detach()));
            entries.Add(new(PeftAdapterFiles.KeyPrefix + name + ".lora_B.weight", [l.OutFeatures, l.Rank], () => l.B.detach()));
        }
        SafetensorsFile.Write(Path.Combine(directory, PeftAdapterFiles.WeightsFileName), entries, dtype);
        File.WriteAllText(Path.Combine(directory, PeftAdapterFiles.ConfigFileName),
            PeftAdapterFiles.WriteConfig(options, baseModelNameOrPath).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Loads a PEFT LoRA adapter folder onto this model: adds adapters of the folder's settings when the model has none
    /// (or checks that its own have the same shape), then loads their weights.
    /// </summary>
    /// <param name="directory">A folder with <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>.</param>
    /// <param name="storeBaseInBFloat16">Hold the frozen base weights in bfloat16 when the adapters are added here.</param>
    /// <exception cref="InvalidDataException">The folder's settings differ from the model's adapters, or a tensor is
    /// missing, unexpected or of the wrong shape; the message names it.</exception>
    public void LoadLoraAdapter(string directory, bool storeBaseInBFloat16 = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var options = PeftAdapterFiles.ReadConfig(directory) with { StoreBaseInBFloat16 = storeBaseInBFloat16 };
        var weightsPath = Path.Combine(directory, PeftAdapterFiles.WeightsFileName);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"'{directory}' has no {PeftAdapterFiles.WeightsFileName}.", weightsPath);
        if (Lora is null) AddLoraAdapters(options);
        else if (!Lora.SameAdapter(options))
            throw new InvalidDataException($"Adapter '{directory}' (r {options.Rank}, alpha {options.Alpha}, targets {string.Join(" ", options.TargetModules)}) "
                + $"does not match the model's adapters (r {Lora.Rank}, alpha {Lora.Alpha}, targets {string.Join(" ", Lora.TargetModules)}).");

        var expected = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, layer) in LoraLayers())
        {
            expected[PeftAdapterFiles.KeyPrefix + name + ".lora_A.weight"] = layer.A;
            expected[PeftAdapterFiles.KeyPrefix + name + ".lora_B.weight"] = layer.B;
        }
        var loaded = SafetensorsFile.ReadAll(weightsPath);
        try
        {
            using var noGrad = no_grad();
            foreach (var (key, value) in loaded)
            {
                if (!expected.TryGetValue(key, out var target))
                    throw new InvalidDataException($"'{weightsPath}' holds '{key}', which is not an adapter of this model.");
                if (!target.shape.SequenceEqual(value.shape))
                    throw new InvalidDataException($"'{weightsPath}': '{key}' has shape [{string.Join(", ", value.shape)}], the model's adapter [{string.Join(", ", target.shape)}].");
                target.copy_(value);
            }
            var missing = expected.Keys.FirstOrDefault(k => !loaded.ContainsKey(k));
            if (missing is not null) throw new InvalidDataException($"'{weightsPath}' lacks '{missing}'.");
        }
        finally
        {
            foreach (var t in loaded.Values) t.Dispose();
        }
    }

    /// <summary>
    /// The weights of the plain architecture under their Hugging Face names, as lazily produced float tensors: adapters
    /// folded in when <paramref name="mergeAdapters"/> is set, the bare base weights otherwise.
    /// </summary>
    internal IReadOnlyList<SafetensorsEntry> PlainWeightEntries(bool mergeAdapters)
    {
        var lora = LoraLayers().ToDictionary(l => l.Name + ".weight", l => l.Layer, StringComparer.Ordinal);
        var entries = new List<SafetensorsEntry>();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".lora_A.weight", StringComparison.Ordinal) || name.EndsWith(".lora_B.weight", StringComparison.Ordinal)) continue;
            var parameter = p;
            Func<Tensor> produce = lora.TryGetValue(name, out var layer)
                ? mergeAdapters ? layer.MergedWeight : () => layer.BaseWeight.detach().to_type(layer.A.dtype)
                : () => parameter.detach();
            entries.Add(new SafetensorsEntry(name, [.. p.shape], produce));
        }
        return entries;
    }

    /// <summary>A plain model holding this model's weights, adapters merged or dropped.</summary>
    internal CausalLanguageModel ToPlainModel(bool mergeAdapters)
    {
        // The throw-away initialisation must not advance the global generator a training run relies on.
        CausalLanguageModel plain;
        using (var state = random.get_rng_state())
        {
            plain = new CausalLanguageModel(Config);
            random.set_rng_state(state);
        }
        var target = plain.state_dict();
        using var noGrad = no_grad();
        foreach (var e in PlainWeightEntries(mergeAdapters))
        {
            using var scope = NewDisposeScope();
            target[e.Name].copy_(e.Produce());
        }
        return plain;
    }

    // The base as a plain model.bin (float32, loadable by LoadCheckpoint on its own) plus the adapter in PEFT's layout.
    private void SaveLoraCheckpoint(string directory, string weightsPath)
    {
        using (var plain = ToPlainModel(mergeAdapters: false)) plain.save(weightsPath);
        SaveLoraAdapter(directory);
    }
}
