using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Models;

namespace StableAlignment.Cli;

/// <summary>
/// A checkpoint folder the steps hand to each other: the model (TorchSharp weights + config.json) and the tokenizer
/// it was trained with: either the compact vocabulary over GPT-2 (<c>vocabulary.json</c>) or a Hugging Face
/// <c>tokenizer.json</c> copied from the starting model.
/// </summary>
internal static class ModelBundle
{
    private const string CompactVocabulary = "vocabulary.json";
    private const string HuggingFaceTokenizer = "tokenizer.json";

    public static void Save(string directory, CausalLanguageModel model, string tokenizerFile)
    {
        model.SaveCheckpoint(directory);
        string name = Path.GetFileName(tokenizerFile) == HuggingFaceTokenizer ? HuggingFaceTokenizer : CompactVocabulary;
        File.Copy(tokenizerFile, Path.Combine(directory, name), overwrite: true);
    }

    public static (CausalLanguageModel Model, Tokenizer Tokenizer) Load(string directory)
    {
        RunLayout.Require(directory, "train");
        var model = CausalLanguageModel.LoadCheckpoint(directory);
        return (model, LoadTokenizer(directory));
    }

    /// <summary>The tokenizer stored beside a checkpoint (or a dataset's vocabulary file).</summary>
    public static Tokenizer LoadTokenizer(string directoryOrFile)
    {
        string hf = Path.Combine(directoryOrFile, HuggingFaceTokenizer), compact = Path.Combine(directoryOrFile, CompactVocabulary);
        if (File.Exists(hf)) return ModelTokenizers.FromFile(hf);
        if (File.Exists(compact)) return CompactVocabularyTokenizer.Load(compact, ModelTokenizers.Gpt2());
        if (File.Exists(directoryOrFile) && Path.GetFileName(directoryOrFile) == HuggingFaceTokenizer) return ModelTokenizers.FromFile(directoryOrFile);
        if (File.Exists(directoryOrFile)) return CompactVocabularyTokenizer.Load(directoryOrFile, ModelTokenizers.Gpt2());
        throw new UserFacingException($"No tokenizer ({HuggingFaceTokenizer} or {CompactVocabulary}) in '{directoryOrFile}'.");
    }
}
