using System.Buffers;
using FsCheck.Xunit;
using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;

namespace StableAlignment.Core.Tests.Models;

public sealed class CompactVocabularyTokenizerTests : IDisposable
{
    private static readonly Tokenizer Gpt2 = ModelTokenizers.Gpt2();

    private static readonly string[] Words =
        ["the", "cashier", "gave", "back", "too", "much", "change", "honest", "refuse", "help", "café", "naïve", "日本語", "Ünïcode", "don't", "42", "1999"];

    private static readonly string[] Punctuation = [".", ",", "!", "?", "😀"];

    // GPT-2 splits text into pre-tokens (" ?letters", " ?digits", " ?punctuation") and encodes each on its own, so a
    // corpus holding every word both alone and after a space covers every token of any sentence of these words.
    private static readonly string[] Corpus =
        [.. Words, .. Words.Select(w => "x " + w), .. Punctuation, .. Punctuation.Select(p => "x " + p)];

    private static readonly Lazy<CompactVocabularyTokenizer> Compact = new(() => CompactVocabularyTokenizer.Build(Gpt2, Corpus));

    private readonly string _dir = Directory.CreateTempSubdirectory("compact-vocab-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string RandomSentence(Random rng)
    {
        int n = rng.Next(1, 12);
        var parts = new List<string>();
        for (int i = 0; i < n; i++)
        {
            parts.Add(Words[rng.Next(Words.Length)]);
            if (rng.Next(4) == 0) parts[^1] += Punctuation[rng.Next(Punctuation.Length)];
        }
        return string.Join(' ', parts);
    }

    [Property(MaxTest = 200)]
    public bool In_corpus_sentences_round_trip_as_through_the_inner_tokenizer(int seed)
    {
        var compact = Compact.Value;
        string text = RandomSentence(new Random(seed));
        var innerIds = Gpt2.EncodeToIds(text);
        var ids = compact.EncodeToIds(text);
        return ids.Count == innerIds.Count
            && ids.All(id => id >= 0 && id < compact.VocabularySize && id != compact.UnknownId)
            && ids.Select(id => compact.ToInnerId(id)!.Value).SequenceEqual(innerIds)
            && compact.Decode(ids) == Gpt2.Decode(innerIds)
            && compact.Decode(ids) == text
            && compact.CountTokens(text) == innerIds.Count
            && compact.EncodeToTokens(text, out _).Select(t => t.Id).SequenceEqual(ids);
    }

    [Fact]
    public void Vocabulary_is_small_and_end_of_text_comes_first()
    {
        var compact = Compact.Value;
        Assert.InRange(compact.VocabularySize, 10, 100);
        Assert.Equal(0, compact.EndOfTextId);
        Assert.Equal(1, compact.UnknownId);
        Assert.Equal(50256, compact.ToInnerId(0));
        Assert.Null(compact.ToInnerId(1));
        Assert.Equal(0, ModelTokenizers.EndOfTextId(compact));
        Assert.Equal([0], compact.EncodeToIds("<|endoftext|>"));
        Assert.Equal("<|endoftext|>", compact.Decode([0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => compact.Decode([compact.VocabularySize]));
    }

    [Fact]
    public void Out_of_corpus_tokens_become_unknown_and_decode_to_nothing()
    {
        var compact = CompactVocabularyTokenizer.Build(Gpt2, ["the cat sat"]);
        int unknown = compact.UnknownId;
        Assert.All(compact.EncodeToIds(" zebra quantum"), id => Assert.Equal(unknown, id));
        var mixed = compact.EncodeToIds("the zebra sat");
        Assert.Equal(Gpt2.CountTokens("the zebra sat"), mixed.Count);
        Assert.Equal(unknown, mixed[1]);
        Assert.Equal("the sat", compact.Decode(mixed));

        // EncodeToTokens keeps the text of the unknown token so callers can see what was lost.
        var tokens = compact.EncodeToTokens("the zebra", out _);
        Assert.Equal(unknown, tokens[1].Id);
        Assert.Equal(Gpt2.EncodeToTokens("the zebra", out _)[1].Value, tokens[1].Value);
    }

    [Fact]
    public void Span_decode_skips_unknown_ids_and_reports_what_it_consumed()
    {
        var compact = CompactVocabularyTokenizer.Build(Gpt2, ["the cat sat"]);
        var ids = compact.EncodeToIds("the zebra cat sat");
        var buffer = new char[64];
        Assert.Equal(OperationStatus.Done, compact.Decode(ids, buffer, out int consumed, out int written));
        Assert.Equal(ids.Count, consumed);
        Assert.Equal("the cat sat", new string(buffer, 0, written));

        // Room for "the" only: the unknown ids of " zebra" after it write nothing and are consumed, " cat" is not.
        Assert.Equal(OperationStatus.DestinationTooSmall, compact.Decode(ids, buffer.AsSpan(0, 4), out consumed, out written));
        Assert.Equal("the", new string(buffer, 0, written));
        Assert.Equal(Gpt2.CountTokens("the zebra"), consumed);
    }

    [Fact]
    public void Ids_are_ordered_by_frequency_then_inner_id()
    {
        int a0 = Gpt2.EncodeToIds("a")[0], a = Gpt2.EncodeToIds(" a")[0], b = Gpt2.EncodeToIds(" b")[0], c = Gpt2.EncodeToIds(" c")[0];
        // Counts: " a" 2, " b" 2, "a" 1, " c" 1.
        var compact = CompactVocabularyTokenizer.Build(Gpt2, ["a a a b b c"]);
        int?[] expected = [50256, null, Math.Min(a, b), Math.Max(a, b), Math.Min(a0, c), Math.Max(a0, c)];
        Assert.Equal(expected, Enumerable.Range(0, compact.VocabularySize).Select(compact.ToInnerId));

        var frequent = CompactVocabularyTokenizer.Build(Gpt2, ["a a a b b c"], minCount: 2);
        Assert.Equal(expected[..4], Enumerable.Range(0, frequent.VocabularySize).Select(frequent.ToInnerId));
        var capped = CompactVocabularyTokenizer.Build(Gpt2, ["a a a b b c"], maxSize: 3);
        Assert.Equal(expected[..3], Enumerable.Range(0, capped.VocabularySize).Select(capped.ToInnerId));
        Assert.Throws<ArgumentOutOfRangeException>(() => CompactVocabularyTokenizer.Build(Gpt2, ["a"], maxSize: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => CompactVocabularyTokenizer.Build(Gpt2, ["a"], minCount: 0));
        Assert.Throws<ArgumentException>(() => CompactVocabularyTokenizer.Build(Gpt2, ["a", null!]));
    }

    [Fact]
    public void Build_is_deterministic_whatever_the_corpus_order()
    {
        var rng = new Random(3);
        var corpus = Enumerable.Range(0, 400).Select(_ => RandomSentence(rng)).ToArray();
        var first = CompactVocabularyTokenizer.Build(Gpt2, corpus);
        var second = CompactVocabularyTokenizer.Build(Gpt2, corpus.Reverse());
        Assert.Equal(AllInnerIds(first), AllInnerIds(second));
    }

    [Fact]
    public void Concurrent_encodes_agree_with_sequential_ones()
    {
        var compact = Compact.Value;
        var rng = new Random(5);
        var texts = Enumerable.Range(0, 2000).Select(_ => RandomSentence(rng) + " zebra").ToArray();
        var sequential = texts.Select(t => compact.EncodeToIds(t).ToArray()).ToArray();
        var parallel = new int[texts.Length][];
        Parallel.For(0, texts.Length, i => parallel[i] = [.. compact.EncodeToIds(texts[i])]);
        Assert.Equal(sequential, parallel);
    }

    [Fact]
    public void Save_and_load_round_trip()
    {
        string path = Path.Combine(_dir, "vocab.json");
        Compact.Value.Save(path);
        var loaded = CompactVocabularyTokenizer.Load(path, Gpt2);
        Assert.Equal(AllInnerIds(Compact.Value), AllInnerIds(loaded));
        Assert.Equal(Compact.Value.UnknownId, loaded.UnknownId);
        Assert.Equal(Compact.Value.EndOfTextId, loaded.EndOfTextId);
        Assert.Equal(Compact.Value.EncodeToIds("the honest cashier gave back too much change."), loaded.EncodeToIds("the honest cashier gave back too much change."));
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[1, 2]", "not a compact vocabulary")]
    [InlineData("{\"format\":\"stable-alignment-compact-vocabulary\",\"version\":2,\"innerIds\":[-1]}", "version 2")]
    [InlineData("{\"format\":\"stable-alignment-compact-vocabulary\",\"version\":1}", "no \"innerIds\"")]
    [InlineData("{\"format\":\"stable-alignment-compact-vocabulary\",\"version\":1,\"innerIds\":[50256,-1,7,7]}", "appears twice")]
    [InlineData("{\"format\":\"stable-alignment-compact-vocabulary\",\"version\":1,\"innerIds\":[50256,5]}", "exactly once")]
    [InlineData("{\"format\":\"stable-alignment-compact-vocabulary\",\"version\":1,\"innerIds\":[-1,\"x\"]}", "innerIds[1]")]
    [InlineData("{\"format\":\"stable-alignment-compact-vocabulary\",\"version\":1,\"innerIds\":[-1,-2]}", "innerIds[1]")]
    public void Bad_files_are_refused_with_the_file_named(string content, string problem)
    {
        string path = Path.Combine(_dir, "bad.json");
        File.WriteAllText(path, content);
        var ex = Assert.Throws<InvalidDataException>(() => CompactVocabularyTokenizer.Load(path, Gpt2));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
        var missing = Path.Combine(_dir, "missing.json");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => CompactVocabularyTokenizer.Load(missing, Gpt2)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Preference_batches_over_the_compact_tokenizer_stay_inside_the_vocabulary()
    {
        var rng = new Random(9);
        var records = Enumerable.Range(0, 40).Select(q =>
        {
            int k = rng.Next(2, 5);
            return new AlignmentRecord($"### Instruction:\n{RandomSentence(rng)}\n\n### Response:",
                [.. Enumerable.Range(0, k).Select(i => $" {RandomSentence(rng)} zebra{i}")],
                [.. Enumerable.Range(0, k).Select(_ => (double)rng.Next(1, 8))],
                [.. Enumerable.Range(0, k).Select(_ => "")]);
        }).ToList();
        var dataset = AlignmentDataset.FromRecords(records);
        // Built from the queries only: the responses' "zebraN" tokens are out of vocabulary.
        var compact = CompactVocabularyTokenizer.Build(Gpt2, records.Select(r => r.Query));
        var batcher = dataset.CreateBatcher(compact, new PreferenceBatchOptions { MaxLength = 64, GroupsPerBatch = 4 });
        Assert.Equal(compact.EndOfTextId, batcher.PadTokenId);
        bool sawUnknown = false;
        foreach (var batch in batcher.Batches())
        {
            using (batch)
            {
                var ids = batch.InputIds.data<long>().ToArray();
                Assert.All(ids, id => Assert.InRange(id, 0, compact.VocabularySize - 1));
                Assert.All(batch.Targets.data<long>().ToArray(), id => Assert.True(id == -100 || (id >= 0 && id < compact.VocabularySize)));
                sawUnknown |= ids.Contains(compact.UnknownId);
            }
        }
        Assert.True(sawUnknown);
    }

    [Fact]
    public void Text_generator_runs_on_a_model_sized_to_the_compact_vocabulary()
    {
        var compact = Compact.Value;
        var config = CausalLanguageModelTests.Tiny with { VocabSize = compact.VocabularySize, MaxSequenceLength = 48 };
        using var model = new CausalLanguageModel(config, seed: 4);
        var generator = new TextGenerator(model, compact);
        Assert.Equal(compact.EndOfTextId, generator.EndOfTextId);
        var result = generator.Generate("the cashier", new GenerationOptions { MaxNewTokens = 8, Seed = 1 });
        Assert.All(result.TokenIds, id => Assert.InRange(id, 0, compact.VocabularySize - 1));
        Assert.Equal(compact.Decode(result.TokenIds), result.Text);
        var scores = generator.ScoreContinuations([("the cashier gave", " back"), ("", "honest")]);
        Assert.All(scores, s => Assert.True(s.LogLikelihood < 0));
    }

    private static int?[] AllInnerIds(CompactVocabularyTokenizer t) => [.. Enumerable.Range(0, t.VocabularySize).Select(t.ToInnerId)];
}
