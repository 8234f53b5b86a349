using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Models;

/// <summary>
/// A model checkpoint folder as the experiment's steps hand it on: the weights and <c>config.json</c>
/// (<see cref="CausalLanguageModel.SaveCheckpoint"/>) beside the tokenizer the model was trained with, either the
/// compact vocabulary over GPT-2 (<c>vocabulary.json</c>) or a Hugging Face <c>tokenizer.json</c>.
/// </summary>
public sealed class ModelCheckpoint : IDisposable
{
    /// <summary>The file name of a compact vocabulary (<see cref="CompactVocabularyTokenizer"/>).</summary>
    public const string CompactVocabularyFileName = "vocabulary.json";

    /// <summary>The file name of a Hugging Face tokenizer.</summary>
    public const string HuggingFaceTokenizerFileName = "tokenizer.json";

    private ModelCheckpoint(CausalLanguageModel model, Tokenizer tokenizer)
    {
        Model = model;
        Tokenizer = tokenizer;
    }

    /// <summary>The model, on the CPU.</summary>
    public CausalLanguageModel Model { get; }

    /// <summary>The tokenizer stored beside it.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>Saves <paramref name="model"/> to <paramref name="directory"/> with a copy of its tokenizer file.</summary>
    /// <param name="directory">The folder (created when missing).</param>
    /// <param name="model">The model.</param>
    /// <param name="tokenizerFile">A <c>vocabulary.json</c> or <c>tokenizer.json</c>.</param>
    public static void Save(string directory, CausalLanguageModel model, string tokenizerFile)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.SaveCheckpoint(directory);
        CopyTokenizer(tokenizerFile, directory);
    }

    /// <summary>Copies a tokenizer file into a checkpoint folder under the name <see cref="LoadTokenizer"/> looks for.</summary>
    /// <param name="tokenizerFile">A <c>vocabulary.json</c> or <c>tokenizer.json</c>.</param>
    /// <param name="directory">The checkpoint folder (created when missing).</param>
    public static void CopyTokenizer(string tokenizerFile, string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tokenizerFile);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (!File.Exists(tokenizerFile)) throw new FileNotFoundException($"Tokenizer file '{tokenizerFile}' does not exist.", tokenizerFile);
        Directory.CreateDirectory(directory);
        string name = IsHuggingFace(tokenizerFile) ? HuggingFaceTokenizerFileName : CompactVocabularyFileName;
        File.Copy(tokenizerFile, Path.Combine(directory, name), overwrite: true);
    }

    /// <summary>Loads a checkpoint folder written by <see cref="Save"/>.</summary>
    /// <param name="directory">The folder.</param>
    /// <returns>The model and its tokenizer; dispose it to free the model.</returns>
    /// <exception cref="FileNotFoundException">The folder, its weights, its config or its tokenizer is missing.</exception>
    public static ModelCheckpoint Load(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (!Directory.Exists(directory)) throw new FileNotFoundException($"Checkpoint folder '{directory}' does not exist.", directory);
        var tokenizer = LoadTokenizer(directory);
        return new ModelCheckpoint(CausalLanguageModel.LoadCheckpoint(directory), tokenizer);
    }

    /// <summary>The tokenizer stored in a checkpoint folder, or in a <c>vocabulary.json</c> / <c>tokenizer.json</c> file itself.</summary>
    /// <param name="directoryOrFile">A checkpoint or dataset folder, or a tokenizer file.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException">No tokenizer is there.</exception>
    public static Tokenizer LoadTokenizer(string directoryOrFile)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directoryOrFile);
        string hf = Path.Combine(directoryOrFile, HuggingFaceTokenizerFileName), compact = Path.Combine(directoryOrFile, CompactVocabularyFileName);
        if (File.Exists(hf)) return ModelTokenizers.FromFile(hf);
        if (File.Exists(compact)) return CompactVocabularyTokenizer.Load(compact, ModelTokenizers.Gpt2());
        if (File.Exists(directoryOrFile))
            return IsHuggingFace(directoryOrFile) ? ModelTokenizers.FromFile(directoryOrFile) : CompactVocabularyTokenizer.Load(directoryOrFile, ModelTokenizers.Gpt2());
        throw new FileNotFoundException($"No tokenizer ({HuggingFaceTokenizerFileName} or {CompactVocabularyFileName}) in '{directoryOrFile}'.", directoryOrFile);
    }

    private static bool IsHuggingFace(string file) => Path.GetFileName(file) == HuggingFaceTokenizerFileName;

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}
