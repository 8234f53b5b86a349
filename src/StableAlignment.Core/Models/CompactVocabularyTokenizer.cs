using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Models;

/// <summary>
/// A tokenizer that wraps another one (GPT-2 BPE by default) and renumbers only the inner ids that occur in a corpus
/// into the dense range [0, <see cref="VocabularySize"/>), so a small model trained on a narrow domain needs an
/// embedding and output layer of a few thousand rows instead of the inner vocabulary's 50257.
/// </summary>
/// <remarks>
/// <para>Text is split exactly as the inner tokenizer splits it; only the ids change. An inner id outside the compact
/// vocabulary becomes <see cref="UnknownId"/>, and <see cref="UnknownId"/> decodes to the empty string (so decoded
/// text never contains a made-up marker; <see cref="Tokenizer.EncodeToTokens(string, out string?, bool, bool)"/> still
/// shows the original text of an unknown token in <see cref="EncodedToken.Value"/>).</para>
/// <para>Compact id 0 is the inner end-of-text token when the inner tokenizer has one (so a default pad id of 0 is
/// end-of-text), then <see cref="UnknownId"/>, then the corpus ids by descending frequency, ties by ascending inner id.</para>
/// <para>Instances are immutable and safe for concurrent use when the inner tokenizer is (the Microsoft.ML tokenizers are).</para>
/// </remarks>
public sealed class CompactVocabularyTokenizer : Tokenizer
{
    private const string Format = "stable-alignment-compact-vocabulary";
    private const int FormatVersion = 1;
    private const int UnknownMarker = -1; // stands for UnknownId in the saved list of inner ids

    private readonly int[] _innerIds; // compact id -> inner id (UnknownMarker at UnknownId)
    private readonly Dictionary<int, int> _compactIds; // inner id -> compact id

    private CompactVocabularyTokenizer(Tokenizer inner, int[] innerIds)
    {
        Inner = inner;
        _innerIds = innerIds;
        _compactIds = new Dictionary<int, int>(innerIds.Length);
        for (int i = 0; i < innerIds.Length; i++)
        {
            if (innerIds[i] == UnknownMarker) UnknownId = i;
            else _compactIds.Add(innerIds[i], i);
        }
        int? innerEnd = ModelTokenizers.EndOfTextId(inner);
        EndOfTextId = innerEnd is int e && _compactIds.TryGetValue(e, out int c) ? c : null;
    }

    /// <summary>The wrapped tokenizer, which splits the text.</summary>
    public Tokenizer Inner { get; }

    /// <summary>Number of compact ids: what <see cref="CausalLanguageModelConfig.VocabSize"/> must be.</summary>
    public int VocabularySize => _innerIds.Length;

    /// <summary>The id of every inner token that is not in the compact vocabulary; it decodes to the empty string.</summary>
    public int UnknownId { get; }

    /// <summary>The compact id of the inner tokenizer's end-of-text token, or null when the inner tokenizer has none.</summary>
    public int? EndOfTextId { get; }

    /// <summary>Builds the compact vocabulary of the inner ids found in <paramref name="corpus"/>.</summary>
    /// <param name="inner">The tokenizer to wrap, e.g. <see cref="ModelTokenizers.Gpt2"/>.</param>
    /// <param name="corpus">Texts the model will see (queries and responses); encoded in parallel.</param>
    /// <param name="minCount">Keep only inner ids seen at least this many times (default 1: all of them).</param>
    /// <param name="maxSize">At most this many compact ids in all, end-of-text and unknown included (at least 2); the
    /// most frequent ids are kept. Null: no limit.</param>
    /// <returns>The tokenizer; the same corpus and settings always give the same ids.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minCount"/> &lt; 1 or <paramref name="maxSize"/> &lt; 2.</exception>
    public static CompactVocabularyTokenizer Build(Tokenizer inner, IEnumerable<string> corpus, int minCount = 1, int? maxSize = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentOutOfRangeException.ThrowIfLessThan(minCount, 1);
        if (maxSize is < 2)
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "maxSize must be at least 2 (end-of-text and unknown).");

        // Per-thread counts merged at the end: sums do not depend on the partitioning, so the result is deterministic.
        var counts = new Dictionary<int, long>();
        var gate = new Lock();
        try
        {
            Parallel.ForEach(Partitioner.Create(corpus), () => new Dictionary<int, long>(), (text, _, local) =>
            {
                if (text is null) throw new ArgumentException("The corpus contains a null text.", nameof(corpus));
                foreach (int id in inner.EncodeToIds(text))
                    local[id] = local.GetValueOrDefault(id) + 1;
                return local;
            }, local =>
            {
                lock (gate)
                {
                    foreach (var (id, n) in local)
                        counts[id] = counts.GetValueOrDefault(id) + n;
                }
            });
        }
        catch (AggregateException ex)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(ex.Flatten().InnerExceptions[0]);
        }

        int? endOfText = ModelTokenizers.EndOfTextId(inner);
        var ids = new List<int>();
        if (endOfText is int e) ids.Add(e);
        ids.Add(UnknownMarker);
        int room = (maxSize ?? int.MaxValue) - ids.Count;
        ids.AddRange(counts
            .Where(kv => kv.Value >= minCount && kv.Key != endOfText)
            .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key)
            .Take(Math.Max(room, 0))
            .Select(kv => kv.Key));
        return new CompactVocabularyTokenizer(inner, [.. ids]);
    }

    /// <summary>Saves the vocabulary (a format version and the inner ids in compact order; not the inner tokenizer) as JSON.</summary>
    /// <param name="path">The file to write.</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var json = new JsonObject
        {
            ["format"] = Format,
            ["version"] = FormatVersion,
            ["unknownMarker"] = UnknownMarker,
            ["innerIds"] = new JsonArray([.. _innerIds.Select(id => (JsonNode)id)]),
        };
        File.WriteAllText(path, json.ToJsonString());
    }

    /// <summary>Loads a vocabulary written by <see cref="Save"/> and wraps <paramref name="inner"/> with it.</summary>
    /// <param name="path">The file <see cref="Save"/> wrote.</param>
    /// <param name="inner">The same inner tokenizer the vocabulary was built with.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid compact vocabulary; the message names the file and the problem.</exception>
    public static CompactVocabularyTokenizer Load(string path, Tokenizer inner)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(inner);
        if (!File.Exists(path)) throw new FileNotFoundException($"Compact vocabulary file '{path}' does not exist.", path);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Compact vocabulary file '{path}' is not valid JSON: {ex.Message}", ex);
        }
        if (root is not JsonObject obj || obj["format"]?.GetValueKind() != JsonValueKind.String || (string?)obj["format"] != Format)
            throw new InvalidDataException($"Compact vocabulary file '{path}' is not a compact vocabulary (\"format\" must be \"{Format}\").");
        if (obj["version"] is not JsonValue v || !v.TryGetValue(out int version) || version != FormatVersion)
            throw new InvalidDataException($"Compact vocabulary file '{path}' has version {obj["version"]?.ToJsonString() ?? "(none)"}; only version {FormatVersion} can be read.");
        if (obj["innerIds"] is not JsonArray array)
            throw new InvalidDataException($"Compact vocabulary file '{path}' has no \"innerIds\" array.");

        var ids = new int[array.Count];
        var seen = new HashSet<int>();
        int unknowns = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if (array[i] is not JsonValue item || !item.TryGetValue(out int id) || id < UnknownMarker)
                throw new InvalidDataException($"Compact vocabulary file '{path}': innerIds[{i}] is {array[i]?.ToJsonString() ?? "null"}, not an inner id (>= 0) or {UnknownMarker}.");
            if (id == UnknownMarker) unknowns++;
            else if (!seen.Add(id))
                throw new InvalidDataException($"Compact vocabulary file '{path}': inner id {id} appears twice (again at innerIds[{i}]).");
            ids[i] = id;
        }
        if (unknowns != 1)
            throw new InvalidDataException($"Compact vocabulary file '{path}': innerIds must contain the unknown marker {UnknownMarker} exactly once (found {unknowns}).");
        return new CompactVocabularyTokenizer(inner, ids);
    }

    /// <summary>The inner id of a compact id, or null for <see cref="UnknownId"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="compactId"/> is outside [0, <see cref="VocabularySize"/>).</exception>
    public int? ToInnerId(int compactId)
    {
        if ((uint)compactId >= (uint)_innerIds.Length)
            throw new ArgumentOutOfRangeException(nameof(compactId), compactId, $"Compact ids are in [0, {_innerIds.Length}).");
        int id = _innerIds[compactId];
        return id == UnknownMarker ? null : id;
    }

    /// <summary>The compact id of an inner id (<see cref="UnknownId"/> when it is not in the vocabulary).</summary>
    public int ToCompactId(int innerId) => _compactIds.TryGetValue(innerId, out int id) ? id : UnknownId;

    /// <inheritdoc />
    public override PreTokenizer? PreTokenizer => Inner.PreTokenizer;

    /// <inheritdoc />
    public override Normalizer? Normalizer => Inner.Normalizer;

    /// <inheritdoc />
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var tokens = text is null
            ? Inner.EncodeToTokens(textSpan, out string? normalized, settings.ConsiderPreTokenization, settings.ConsiderNormalization)
            : Inner.EncodeToTokens(text, out normalized, settings.ConsiderPreTokenization, settings.ConsiderNormalization);
        int take = Math.Min(tokens.Count, settings.MaxTokenCount);
        var mapped = new EncodedToken[take];
        for (int i = 0; i < take; i++)
            mapped[i] = new EncodedToken(ToCompactId(tokens[i].Id), tokens[i].Value, tokens[i].Offset);
        int length = normalized?.Length ?? text?.Length ?? textSpan.Length;
        int consumed = take == tokens.Count ? length : take == 0 ? 0 : mapped[take - 1].Offset.End.GetOffset(length);
        return new EncodeResults<EncodedToken> { Tokens = mapped, NormalizedText = normalized, CharsConsumed = consumed };
    }

    /// <inheritdoc />
    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        IReadOnlyList<int> ids;
        string? normalized;
        int consumed;
        if (text is null)
            ids = Inner.EncodeToIds(textSpan, settings.MaxTokenCount, out normalized, out consumed, settings.ConsiderPreTokenization, settings.ConsiderNormalization);
        else
            ids = Inner.EncodeToIds(text, settings.MaxTokenCount, out normalized, out consumed, settings.ConsiderPreTokenization, settings.ConsiderNormalization);
        var mapped = new int[ids.Count];
        for (int i = 0; i < mapped.Length; i++)
            mapped[i] = ToCompactId(ids[i]);
        return new EncodeResults<int> { Tokens = mapped, NormalizedText = normalized, CharsConsumed = consumed };
    }

    /// <inheritdoc />
    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings) =>
        // Renumbering never changes how many tokens there are.
        text is null
            ? Inner.CountTokens(textSpan, settings.ConsiderPreTokenization, settings.ConsiderNormalization)
            : Inner.CountTokens(text, settings.ConsiderPreTokenization, settings.ConsiderNormalization);

    /// <inheritdoc />
    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings, bool fromEnd,
        out string? normalizedText, out int tokenCount)
    {
        ReadOnlySpan<char> span = text is null ? textSpan : text.AsSpan();
        return fromEnd
            ? Inner.GetIndexByTokenCountFromEnd(span, settings.MaxTokenCount, out normalizedText, out tokenCount, settings.ConsiderPreTokenization, settings.ConsiderNormalization)
            : Inner.GetIndexByTokenCount(span, settings.MaxTokenCount, out normalizedText, out tokenCount, settings.ConsiderPreTokenization, settings.ConsiderNormalization);
    }

    /// <inheritdoc />
    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return Inner.Decode(KnownInnerIds(ids));
    }

    /// <inheritdoc />
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var compact = ids as IReadOnlyList<int> ?? [.. ids];
        var inner = KnownInnerIds(compact);
        var status = Inner.Decode(inner, destination, out int innerConsumed, out charsWritten);
        // Unknown ids write nothing, so they count as consumed up to the first known id the inner tokenizer did not take.
        idsConsumed = 0;
        for (int known = 0; idsConsumed < compact.Count; idsConsumed++)
        {
            if (ToInnerId(compact[idsConsumed]) is null) continue;
            if (known == innerConsumed) break;
            known++;
        }
        return status;
    }

    private List<int> KnownInnerIds(IEnumerable<int> compactIds)
    {
        var inner = new List<int>();
        foreach (int id in compactIds)
        {
            if (ToInnerId(id) is int i) inner.Add(i);
        }
        return inner;
    }
}
