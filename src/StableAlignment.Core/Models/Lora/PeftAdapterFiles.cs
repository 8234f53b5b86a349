using System.Text.Json;
using System.Text.Json.Nodes;

namespace StableAlignment.Core.Models;

/// <summary>
/// PEFT's adapter folder: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> with keys
/// <c>base_model.model.{name}.lora_A.weight</c> / <c>.lora_B.weight</c>, where <c>{name}</c> is the projection's
/// Hugging Face module path (<c>model.layers.0.self_attn.q_proj</c>).
/// </summary>
internal static class PeftAdapterFiles
{
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";
    public const string KeyPrefix = "base_model.model.";

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, ConfigFileName));

    public static JsonObject WriteConfig(LoraOptions options, string? baseModelNameOrPath) => new()
    {
        ["peft_type"] = "LORA",
        ["task_type"] = "CAUSAL_LM",
        ["r"] = options.Rank,
        ["lora_alpha"] = options.Alpha,
        ["lora_dropout"] = options.Dropout,
        ["target_modules"] = new JsonArray([.. options.TargetModules.Select(m => (JsonNode)m)]),
        ["bias"] = "none",
        ["use_rslora"] = options.UseRsLora,
        ["use_dora"] = false,
        ["fan_in_fan_out"] = false,
        ["modules_to_save"] = null,
        ["init_lora_weights"] = true,
        ["inference_mode"] = true,
        ["base_model_name_or_path"] = baseModelNameOrPath,
    };

    /// <summary>Reads <c>adapter_config.json</c>; anything that would change what the adapter computes and is not LoRA as above is refused.</summary>
    public static LoraOptions ReadConfig(string directory)
    {
        var path = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{directory}' is not a PEFT adapter folder: no {ConfigFileName}.", path);
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"'{path}' is not a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {ex.Message}", ex);
        }

        InvalidDataException Bad(string field, JsonNode? value, string why) =>
            new($"'{path}': field '{field}' = {value?.ToJsonString() ?? "null"} {why}.");
        string? Str(string field) => root[field] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

        if (Str("peft_type") != "LORA") throw Bad("peft_type", root["peft_type"], "is not supported; only LORA adapters load");
        if (root["task_type"] is { } task && Str("task_type") != "CAUSAL_LM") throw Bad("task_type", task, "is not CAUSAL_LM");
        if (root["bias"] is { } bias && Str("bias") != "none") throw Bad("bias", bias, "is not supported; only bias \"none\" adapters load");
        foreach (var flag in (string[])["use_dora", "fan_in_fan_out", "lora_bias"])
            if (root[flag] is JsonValue f && f.TryGetValue(out bool on) && on) throw Bad(flag, f, "is not supported");
        foreach (var list in (string[])["modules_to_save", "layers_to_transform", "layer_replication"])
            if (root[list] is JsonArray { Count: > 0 } a) throw Bad(list, a, "is not supported");
        foreach (var pattern in (string[])["rank_pattern", "alpha_pattern"])
            if (root[pattern] is JsonObject { Count: > 0 } o) throw Bad(pattern, o, "is not supported; every layer must share r and lora_alpha");

        IReadOnlyList<string> targets = root["target_modules"] switch
        {
            JsonArray arr => [.. arr.Select(n => n?.GetValue<string>() ?? "")],
            JsonValue v when v.TryGetValue(out string? s) && s == "all-linear" => LoraOptions.AllLinearModules,
            var other => throw Bad("target_modules", other, "is not a list of module names (a regular expression is not supported)"),
        };
        int rank = root["r"] is JsonValue r && r.TryGetValue(out int ri) ? ri : throw Bad("r", root["r"], "is not an integer");
        double alpha = root["lora_alpha"] is JsonValue la && la.TryGetValue(out double ad) ? ad : rank;
        double dropout = root["lora_dropout"] is JsonValue ld && ld.TryGetValue(out double dd) ? dd : 0;
        bool rs = root["use_rslora"] is JsonValue rv && rv.TryGetValue(out bool rb) && rb;
        try
        {
            return new LoraOptions { Rank = rank, Alpha = alpha, Dropout = dropout, TargetModules = targets, UseRsLora = rs }.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"'{path}': {ex.Message}", ex);
        }
    }
}
