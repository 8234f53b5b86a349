namespace StableAlignment.Core.Models;

/// <summary>
/// Low-rank adaptation as PEFT defines it: each targeted linear layer <c>y = W x</c> becomes
/// <c>y = W x + scaling * B (A dropout(x))</c> with <c>A</c> <c>[r, in]</c>, <c>B</c> <c>[out, r]</c> and
/// <c>scaling = Alpha / Rank</c> (or <c>Alpha / sqrt(Rank)</c> with rsLoRA). The defaults are TRL's.
/// </summary>
public sealed record LoraOptions
{
    /// <summary>The linear layers of a LLaMA decoder layer, by their Hugging Face names.</summary>
    public static IReadOnlyList<string> AllLinearModules { get; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>The rank <c>r</c> of the update. Default 16.</summary>
    public int Rank { get; init; } = 16;

    /// <summary><c>lora_alpha</c>: the update is scaled by <c>Alpha / Rank</c>. Default 32.</summary>
    public double Alpha { get; init; } = 32;

    /// <summary>Dropout on the adapter's input during training. Default 0.05.</summary>
    public double Dropout { get; init; } = 0.05;

    /// <summary>The projections to adapt, by Hugging Face name. Default: all of <see cref="AllLinearModules"/>.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = AllLinearModules;

    /// <summary>Whether to scale by <c>Alpha / sqrt(Rank)</c> (rank-stabilised LoRA) instead of <c>Alpha / Rank</c>. Default false.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>
    /// Whether to hold the frozen base weights of the adapted layers in bfloat16 (half their memory). The forward pass
    /// widens them to the input's type; merging adds the update to the bfloat16-rounded weights. Not stored in
    /// <c>adapter_config.json</c>. Default false.
    /// </summary>
    public bool StoreBaseInBFloat16 { get; init; }

    /// <summary>The factor applied to <c>B A x</c>.</summary>
    public double Scaling => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one and its value.</summary>
    /// <returns>This instance, for chaining.</returns>
    public LoraOptions Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"Rank must be positive, got {Rank}.", nameof(Rank));
        if (!double.IsFinite(Alpha) || Alpha <= 0) throw new ArgumentException($"Alpha must be a positive finite number, got {Alpha}.", nameof(Alpha));
        if (!(Dropout is >= 0 and < 1)) throw new ArgumentException($"Dropout must be in [0, 1), got {Dropout}.", nameof(Dropout));
        if (TargetModules is null || TargetModules.Count == 0)
            throw new ArgumentException("TargetModules must name at least one projection.", nameof(TargetModules));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var module in TargetModules)
        {
            if (!AllLinearModules.Contains(module))
                throw new ArgumentException($"TargetModules contains '{module}', which is not one of {string.Join(", ", AllLinearModules)}.", nameof(TargetModules));
            if (!seen.Add(module)) throw new ArgumentException($"TargetModules names '{module}' twice.", nameof(TargetModules));
        }
        return this;
    }

    /// <summary>Whether two options give adapters of the same shape and scaling (dropout and storage may differ).</summary>
    internal bool SameAdapter(LoraOptions other) =>
        Rank == other.Rank && Alpha == other.Alpha && UseRsLora == other.UseRsLora
        && TargetModules.Order(StringComparer.Ordinal).SequenceEqual(other.TargetModules.Order(StringComparer.Ordinal), StringComparer.Ordinal);

    /// <summary>
    /// Parses the command-line form <c>r=8,alpha=16,dropout=0.1,targets=q_proj+v_proj,rslora=true</c> (every key
    /// optional; the empty string gives the defaults).
    /// </summary>
    /// <param name="text">The comma-separated settings.</param>
    /// <returns>The validated options.</returns>
    /// <exception cref="ArgumentException">An unknown key or a bad value; the message names it.</exception>
    public static LoraOptions Parse(string? text)
    {
        var options = new LoraOptions();
        foreach (var part in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new ArgumentException($"LoRA setting '{part}' is not of the form key=value (keys: r, alpha, dropout, targets, rslora).", nameof(text));
            string key = part[..eq].Trim().ToLowerInvariant(), value = part[(eq + 1)..].Trim();
            var invariant = System.Globalization.CultureInfo.InvariantCulture;
            bool ok = true;
            switch (key)
            {
                case "r" or "rank":
                    ok = int.TryParse(value, System.Globalization.NumberStyles.Integer, invariant, out var r);
                    options = options with { Rank = r };
                    break;
                case "alpha":
                    ok = double.TryParse(value, System.Globalization.NumberStyles.Float, invariant, out var a);
                    options = options with { Alpha = a };
                    break;
                case "dropout":
                    ok = double.TryParse(value, System.Globalization.NumberStyles.Float, invariant, out var d);
                    options = options with { Dropout = d };
                    break;
                case "targets":
                    options = options with { TargetModules = value.Split('+', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
                    break;
                case "rslora":
                    ok = bool.TryParse(value, out var rs);
                    options = options with { UseRsLora = rs };
                    break;
                default:
                    throw new ArgumentException($"Unknown LoRA setting '{key}' in '{part}'; use r, alpha, dropout, targets or rslora.", nameof(text));
            }
            if (!ok) throw new ArgumentException($"LoRA setting '{part}': '{value}' is not a valid value for {key}.", nameof(text));
        }
        return options.Validate();
    }
}
