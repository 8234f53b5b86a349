using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>
/// A LLaMA-style decoder-only language model: token embedding, pre-norm decoder layers with RMSNorm, rotary
/// embeddings, grouped-query attention and SwiGLU, a final RMSNorm and an (optionally tied) output projection.
/// Parameter names follow Hugging Face's LLaMA/Qwen2 layout (<c>model.layers.0.self_attn.q_proj.weight</c>, ...),
/// so safetensors checkpoints of that architecture load directly.
/// </summary>
public sealed partial class CausalLanguageModel : nn.Module<Tensor, Tensor>
{
    // Components are registered by explicit (Hugging Face) names in the constructor; the default
    // reflection-based registration would add them a second time under the C# field names.
    /// <inheritdoc />
    protected override void RegisterComponents() { }

    private const string WeightsFileName = "model.bin";
    private const string ConfigFileName = "config.json";

    private readonly DecoderBackbone _backbone;
    private readonly Linear? _lmHead;

    /// <summary>Creates a model with freshly initialised weights.</summary>
    /// <param name="config">The architecture; validated here.</param>
    /// <param name="seed">
    /// Seed of the weight initialisation, for reproducible runs: the weights are drawn from a generator of this seed,
    /// whatever other threads draw meanwhile (torch's global generator is seeded with it too, as before). Null draws the
    /// weights from torch's global generator.
    /// </param>
    public CausalLanguageModel(CausalLanguageModelConfig config, long? seed = null) : base(nameof(CausalLanguageModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config.Validate();
        using var generator = InitialisationGenerator(seed);
        _backbone = new DecoderBackbone(Config);
        register_module("model", _backbone);
        if (!Config.TieWordEmbeddings)
        {
            _lmHead = nn.Linear(Config.HiddenSize, Config.VocabSize, hasBias: false);
            register_module("lm_head", _lmHead);
        }

        using (no_grad())
        {
            foreach (var (name, p) in named_parameters())
            {
                // Norm scales start at one; every matrix (and bias) at N(0, range) / zero, as Hugging Face does.
                if (name.EndsWith("norm.weight", StringComparison.Ordinal)) continue;
                if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
                else p.normal_(0, Config.InitializerRange, generator);
            }
        }
    }

    /// <summary>
    /// The generator initial values are drawn from: one of <paramref name="seed"/>, as torch's global generator is shared
    /// by every thread, and a model built while another thread draws from it (another model, dropout, randn) would get
    /// other weights. The global generator is seeded too, as it always was; null draws from the global one.
    /// </summary>
    private static torch.Generator? InitialisationGenerator(long? seed)
    {
        if (seed is not long s) return null;
        random.manual_seed(s);
        return new torch.Generator(unchecked((ulong)s));
    }

    /// <summary>The architecture.</summary>
    public CausalLanguageModelConfig Config { get; }

    /// <summary>Number of scalars in all parameters, frozen ones (a LoRA model's base) included.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Number of scalars the optimiser updates: all of them, or only the adapters of a LoRA model.</summary>
    public long TrainableParameterCount => parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    /// <summary>The decoder layers, whose projections LoRA wraps.</summary>
    internal IReadOnlyList<DecoderLayer> DecoderLayers => _backbone.Layers;

    /// <summary>The token embedding <c>[V, C]</c> (also the output layer when tied).</summary>
    internal Tensor EmbeddingWeight => _backbone.EmbeddingWeight;

    /// <summary>Logits <c>[B, T, V]</c> for token ids <c>[B, T]</c> (int64), causally masked.</summary>
    /// <param name="input">Token ids <c>[B, T]</c>.</param>
    public override Tensor forward(Tensor input) => Logits(input, null);

    /// <summary>Logits for <paramref name="inputIds"/>, reading and extending <paramref name="cache"/> when given.</summary>
    internal Tensor Logits(Tensor inputIds, KeyValueCache? cache)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2)
            throw new ArgumentException($"inputIds must be [batch, tokens], got shape [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        var past = cache?.Length ?? 0;
        if (past + inputIds.shape[1] > Config.MaxSequenceLength)
            throw new ArgumentException($"Sequence of {past + inputIds.shape[1]} tokens exceeds MaxSequenceLength {Config.MaxSequenceLength}.", nameof(inputIds));

        using var scope = NewDisposeScope();
        var hidden = _backbone.Forward(inputIds, cache, past);
        var logits = _lmHead is null
            ? nn.functional.linear(hidden, _backbone.EmbeddingWeight)
            : _lmHead.forward(hidden);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The final-norm hidden states <c>[B, T, C]</c> for token ids <c>[B, T]</c>: everything <see cref="forward"/> computes
    /// but the output projection, for losses that fuse that projection (<see cref="Training.ContrastivePreferenceLoss.ComputeFromHidden"/>
    /// with <see cref="OutputWeight"/>).
    /// </summary>
    /// <param name="inputIds">Token ids <c>[B, T]</c>.</param>
    public Tensor HiddenStates(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2)
            throw new ArgumentException($"inputIds must be [batch, tokens], got shape [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        if (inputIds.shape[1] > Config.MaxSequenceLength)
            throw new ArgumentException($"Sequence of {inputIds.shape[1]} tokens exceeds MaxSequenceLength {Config.MaxSequenceLength}.", nameof(inputIds));
        return _backbone.Forward(inputIds, null, 0);
    }

    /// <summary>
    /// The output projection <c>[V, C]</c> when the output layer is a plain linear map without bias (its own
    /// <c>lm_head</c> or the tied token embedding), so that <c>logits = HiddenStates · OutputWeightᵀ</c>; otherwise
    /// <see langword="null"/>. The trainer fuses the output layer into the loss exactly when this is not null.
    /// </summary>
    public Tensor? OutputWeight => _lmHead is null ? _backbone.EmbeddingWeight : _lmHead.GetType() == typeof(Linear) && _lmHead.bias is null ? _lmHead.weight : null;

    /// <summary>
    /// Whether training forward passes recompute each decoder layer in the backward pass instead of keeping its
    /// activations (see <see cref="Training.TrainerOptions.ActivationCheckpointing"/>); gradients are unchanged.
    /// Applies only while gradients are recorded and no key/value cache is used. Default <see langword="false"/>.
    /// </summary>
    public bool ActivationCheckpointing
    {
        get => _backbone.ActivationCheckpointing;
        set => _backbone.ActivationCheckpointing = value;
    }

    /// <summary>Creates an empty key/value cache for incremental decoding.</summary>
    internal KeyValueCache CreateCache() => new(Config.NumLayers);

    /// <summary>
    /// Saves the model in TorchSharp's format: <c>model.bin</c> (weights) and a Hugging Face style <c>config.json</c>
    /// in <paramref name="directory"/>, which is created when missing.
    /// </summary>
    /// <param name="directory">Target directory.</param>
    /// <remarks>A LoRA model writes its base weights as a plain model would, plus its adapter in PEFT's layout.</remarks>
    public void SaveCheckpoint(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, ConfigFileName), ToHuggingFaceConfigJson());
        if (Lora is null) this.save(Path.Combine(directory, WeightsFileName));
        else SaveLoraCheckpoint(directory, Path.Combine(directory, WeightsFileName));
    }

    /// <summary>Loads a model written by <see cref="SaveCheckpoint"/> (with its LoRA adapter, when the folder has one).</summary>
    /// <param name="directory">Directory holding <c>config.json</c> and <c>model.bin</c> (and <c>adapter_config.json</c>).</param>
    /// <returns>The model, on the CPU.</returns>
    public static CausalLanguageModel LoadCheckpoint(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var config = ReadConfig(directory);
        var weights = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(weights))
            throw new FileNotFoundException($"No TorchSharp weights '{WeightsFileName}' in '{directory}'.", weights);
        var model = new CausalLanguageModel(config);
        try
        {
            model.load(weights);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // TorchSharp's own message names neither the file nor what is wrong with it (a truncated file, another model's weights).
            model.Dispose();
            throw new InvalidDataException($"'{weights}' cannot be loaded as the weights of the model in '{ConfigFileName}' beside it ({e.GetType().Name}: {e.Message}); the file is truncated or from another model.", e);
        }
        if (PeftAdapterFiles.Exists(directory)) model.LoadLoraAdapter(directory);
        return model;
    }

    /// <summary>
    /// Loads a Hugging Face checkpoint of the LLaMA/Qwen2/SmolLM architecture that the user downloaded:
    /// <c>config.json</c> and one or more <c>*.safetensors</c> files in <paramref name="directory"/>.
    /// </summary>
    /// <param name="directory">The checkpoint directory.</param>
    /// <returns>The model in float32 on the CPU.</returns>
    /// <exception cref="InvalidDataException">A weight the architecture needs is missing from the files.</exception>
    public static CausalLanguageModel FromHuggingFace(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var config = ReadConfig(directory);
        var files = Directory.GetFiles(directory, "*.safetensors");
        if (files.Length == 0)
            throw new FileNotFoundException($"No *.safetensors file in '{directory}'.");
        Array.Sort(files, StringComparer.Ordinal);

        var model = new CausalLanguageModel(config);
        var loaded = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            // Non-strict: shards hold subsets, and files may carry buffers (rotary inv_freq) this model computes itself.
            model.load_safetensors(file, strict: false, loadedParameters: loaded);
        }

        var missing = model.state_dict().Keys.Where(k => !loaded.TryGetValue(k, out var ok) || !ok).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"Checkpoint '{directory}' lacks {missing.Count} weight(s) of the configured architecture, e.g. '{missing[0]}'.");
        // A weight the configured architecture does not have (a bias, a norm) would change the math if it were dropped.
        var known = model.state_dict().Keys.ToHashSet(StringComparer.Ordinal);
        foreach (var file in files)
        {
            var stray = SafetensorsFile.ReadHeader(file).Tensors.Keys
                .FirstOrDefault(k => !known.Contains(k) && !k.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal));
            if (stray is not null)
                throw new InvalidDataException($"Checkpoint '{file}' holds weight '{stray}', which the architecture in config.json does not have; the model would compute something else without it.");
        }
        return model;
    }

    private static CausalLanguageModelConfig ReadConfig(string directory)
    {
        var path = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"No '{ConfigFileName}' in '{directory}'.", path);
        try
        {
            return CausalLanguageModelConfig.FromHuggingFaceConfig(File.ReadAllText(path));
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}' is not a usable model configuration: {e.Message}", e);
        }
    }

    /// <summary>The configuration in Hugging Face's <c>config.json</c> vocabulary (model_type llama or qwen2).</summary>
    internal string ToHuggingFaceConfigJson() =>
        HuggingFaceConfig.Write(Config, new Dictionary<string, JsonNode?> { ["torch_dtype"] = "float32" }).ToJsonString();

    /// <summary>Embedding, decoder layers and final norm: Hugging Face's <c>model.*</c> prefix.</summary>
    private sealed class DecoderBackbone : nn.Module
    {
        protected override void RegisterComponents() { }

        private readonly Embedding _embed;
        private readonly ModuleList<DecoderLayer> _layers;
        private readonly RmsNorm _norm;
        private readonly CausalLanguageModelConfig _config;

        public DecoderBackbone(CausalLanguageModelConfig config) : base(nameof(DecoderBackbone))
        {
            _config = config;
            _embed = nn.Embedding(config.VocabSize, config.HiddenSize);
            Layers = Enumerable.Range(0, config.NumLayers).Select(_ => new DecoderLayer(config)).ToArray();
            _layers = nn.ModuleList([.. Layers]);
            _norm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon);
            register_module("embed_tokens", _embed);
            register_module("layers", _layers);
            register_module("norm", _norm);
        }

        public Tensor EmbeddingWeight => _embed.weight!;

        public IReadOnlyList<DecoderLayer> Layers { get; }

        public bool ActivationCheckpointing { get; set; }

        public Tensor Forward(Tensor inputIds, KeyValueCache? cache, long past)
        {
            using var scope = NewDisposeScope();
            var x = _embed.forward(inputIds);
            var (cos, sin) = RotaryEmbedding.Angles(_config.HeadDim, past, inputIds.shape[1], _config.RopeTheta, x.dtype, x.device, _config.RopeScaling);
            var checkpoint = ActivationCheckpointing && cache is null && is_grad_enabled();
            for (var i = 0; i < _layers.Count; i++)
                x = checkpoint && ActivationCheckpoint.Reproducible(_layers[i], x) ? ActivationCheckpoint.Apply(_layers[i], i, x, cos, sin) : _layers[i].Forward(x, cos, sin, cache, i);
            return _norm.forward(x).MoveToOuterDisposeScope();
        }
    }
}
