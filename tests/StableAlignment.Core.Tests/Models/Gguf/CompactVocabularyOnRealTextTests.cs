using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Models;
using Xunit.Abstractions;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// The default run builds its compact vocabulary from the training side only, so held-out text meets tokens outside
/// it. On real text (ETHICS deontology: vocabulary from 80% of the rows, measured on the other 20%), llama.cpp's
/// tokenization of the exported GGUF must equal the library's for every text without such a token, and follow the
/// documented rule for the others.
/// </summary>
[Collection(TorchRandomState.Name)]
public class CompactVocabularyOnRealTextTests(ITestOutputHelper output)
{
    private const string File = "ethics-deontology_test.csv";

    [SharedDataFact(File)]
    public void Held_out_text_tokenizes_in_llama_cpp_as_the_library_does_except_as_documented_for_unknown_tokens()
    {
        using var reader = new StreamReader(SharedData.PathOf(File));
        var table = CsvTable.Read(reader, File, "scenario", "excuse");
        var texts = table.Rows.Select(r => table.Get(r, "scenario") + " " + table.Get(r, "excuse")).ToList();
        int split = texts.Count * 4 / 5;
        var compact = CompactVocabularyTokenizer.Build(ModelTokenizers.Gpt2(), texts.Take(split));
        var heldOut = texts.Skip(split).ToList();

        using var model = new CausalLanguageModel(new CausalLanguageModelConfig
        {
            VocabSize = compact.VocabularySize, HiddenSize = 8, IntermediateSize = 8, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 1, MaxSequenceLength = 64,
        }, seed: 1);
        using var temp = new TempFolder("sa-gguf-real-");
        model.SaveGguf(temp.File("m.gguf"), ExportDType.F32, compact);
        using var llama = new LlamaCppModel(temp.File("m.gguf"));

        int identical = 0, withUnknown = 0;
        foreach (var text in heldOut)
        {
            var ours = compact.EncodeToIds(text).ToArray();
            var theirs = llama.Tokenize(text);
            bool unknown = ours.Contains(compact.UnknownId);
            if (unknown) withUnknown++;
            if (ours.SequenceEqual(theirs)) identical++;
            else Assert.True(unknown, $"'{text}' has no unknown token yet tokenizes differently");
            Assert.Equal(ParityModels.LlamaCppTokensOfCompactLayout(compact, text), theirs);
        }
        output.WriteLine($"vocabulary {compact.VocabularySize} ids from {split} texts; held out {heldOut.Count}: {identical} identical, {withUnknown} with an unknown token");
        Assert.Equal(heldOut.Count - withUnknown, identical);
    }
}
