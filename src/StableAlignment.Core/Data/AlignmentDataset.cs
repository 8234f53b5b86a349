using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Data;

/// <summary>
/// Alignment training data: rendered queries, each with its rated responses (the released Stable Alignment layout).
/// Build it from sandbox interactions or load the released files; split it by query, tokenize it into
/// <see cref="PreferenceBatch"/>es, and describe it with <see cref="ComputeStatistics"/>.
/// </summary>
public sealed class AlignmentDataset
{
    private readonly List<AlignmentRecord> _records;
    private readonly List<SampleKind> _kinds;

    private AlignmentDataset(List<AlignmentRecord> records, List<SampleKind> kinds, AlignmentDatasetOptions options, AlignmentLoadReport? report)
    {
        _records = records;
        _kinds = kinds;
        Options = options;
        LoadReport = report;
    }

    /// <summary>The records, one per distinct query in order of first appearance (files keep their own order).</summary>
    public IReadOnlyList<AlignmentRecord> Records => _records;

    /// <summary>The kind of each record (parallel to <see cref="Records"/>).</summary>
    public IReadOnlyList<SampleKind> Kinds => _kinds;

    /// <summary>The options the dataset was built or loaded with.</summary>
    public AlignmentDatasetOptions Options { get; }

    /// <summary>What loading found, including skipped records in lenient mode; <see langword="null"/> when not loaded from a file.</summary>
    public AlignmentLoadReport? LoadReport { get; }

    /// <summary>The number of samples (responses over all records).</summary>
    public long SampleCount => _records.Sum(r => (long)r.Responses.Count);

    /// <summary>
    /// Builds samples from interaction records by the rules of spec §3 (failed ratings dropped, realignment filtered),
    /// removes duplicate (prompt, response) pairs, and mixes the kinds by <see cref="AlignmentDatasetOptions.Mix"/>.
    /// </summary>
    /// <param name="interactions">Recorded Back-Scatter interactions.</param>
    /// <param name="options">Build options; defaults when <see langword="null"/>.</param>
    /// <returns>The samples, in interaction order.</returns>
    public static IReadOnlyList<AlignmentSample> BuildSamples(IEnumerable<InteractionRecord> interactions, AlignmentDatasetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(interactions);
        options = (options ?? new AlignmentDatasetOptions()).Validate();
        var samples = SampleBuilder.Deduplicate(SampleBuilder.Extract(interactions, options), options.Template);
        return options.Mix is KindMix mix ? SampleBuilder.Mix(samples, mix, options.Seed, options.Template) : samples;
    }

    /// <summary>Builds a dataset from interaction records: <see cref="BuildSamples"/>, then <see cref="FromSamples"/>.</summary>
    /// <param name="interactions">Recorded Back-Scatter interactions.</param>
    /// <param name="options">Build options; defaults when <see langword="null"/>.</param>
    /// <returns>The dataset.</returns>
    public static AlignmentDataset FromInteractions(IEnumerable<InteractionRecord> interactions, AlignmentDatasetOptions? options = null)
    {
        options = (options ?? new AlignmentDatasetOptions()).Validate();
        return FromSamples(BuildSamples(interactions, options), options);
    }

    /// <summary>
    /// Groups samples by rendered prompt into records (queries in order of first appearance, responses in sample
    /// order), dropping any later duplicate of a (prompt, response) pair. No mixing is applied.
    /// </summary>
    /// <param name="samples">The samples.</param>
    /// <param name="options">Options (template, kinds); defaults when <see langword="null"/>.</param>
    /// <returns>The dataset.</returns>
    public static AlignmentDataset FromSamples(IEnumerable<AlignmentSample> samples, AlignmentDatasetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        options = (options ?? new AlignmentDatasetOptions()).Validate();
        var order = new Dictionary<string, int>(StringComparer.Ordinal);
        var groups = new List<(string Query, SampleKind Kind, List<AlignmentSample> Items)>();
        foreach (var s in SampleBuilder.Deduplicate(samples, options.Template))
        {
            string q = s.RenderPrompt(options.Template);
            if (!order.TryGetValue(q, out int g))
            {
                order[q] = g = groups.Count;
                groups.Add((q, s.Kind, []));
            }
            groups[g].Items.Add(s);
        }
        var records = groups.ConvertAll(g => new AlignmentRecord(g.Query,
            g.Items.ConvertAll(s => s.Output), g.Items.ConvertAll(s => s.Rating), g.Items.ConvertAll(s => s.Model)));
        return new AlignmentDataset(records, groups.ConvertAll(g => g.Kind), options, null);
    }

    /// <summary>Creates a dataset from records already grouped (for example from another source); kinds are recognised from the queries.</summary>
    /// <param name="records">The records.</param>
    /// <param name="options">Options; defaults when <see langword="null"/>.</param>
    /// <returns>The dataset.</returns>
    public static AlignmentDataset FromRecords(IEnumerable<AlignmentRecord> records, AlignmentDatasetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        options = (options ?? new AlignmentDatasetOptions()).Validate();
        var list = records.ToList();
        return new AlignmentDataset(list, list.ConvertAll(r => options.KindOf(r.Query)), options, null);
    }

    /// <summary>
    /// Flattens the records into samples, one per response. Each sample keeps the query verbatim in
    /// <see cref="AlignmentSample.Prompt"/>; instruction and input are recovered with the template when it matches.
    /// </summary>
    /// <returns>The samples, record by record.</returns>
    public IReadOnlyList<AlignmentSample> ToSamples()
    {
        var samples = new List<AlignmentSample>((int)Math.Min(int.MaxValue, SampleCount));
        for (int g = 0; g < _records.Count; g++)
        {
            var r = _records[g];
            if (!Options.Template.TryParse(r.Query, out var instruction, out var input))
                (instruction, input) = (r.Query, "");
            for (int i = 0; i < r.Responses.Count; i++)
                samples.Add(new AlignmentSample(_kinds[g], instruction, input, r.Responses[i], r.Scores[i]) { Model = r.Models[i], Prompt = r.Query });
        }
        return samples;
    }

    /// <summary>
    /// Reads the released format (a JSON array) or JSON Lines, streaming: memory grows with the records kept, not
    /// with the file's text. Bad records throw <see cref="AlignmentDataException"/> naming file, record, line and byte
    /// offset, or are skipped and reported in <see cref="LoadReport"/> when <see cref="AlignmentReadOptions.Lenient"/>.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="readOptions">Reading options; defaults when <see langword="null"/>.</param>
    /// <param name="options">Dataset options (kind recognition); defaults when <see langword="null"/>.</param>
    /// <param name="progress">Receives the number of records read so far.</param>
    /// <param name="cancellationToken">Cancels the load.</param>
    /// <returns>The dataset.</returns>
    public static Task<AlignmentDataset> LoadAsync(string path, AlignmentReadOptions? readOptions = null,
        AlignmentDatasetOptions? options = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        readOptions = (readOptions ?? new AlignmentReadOptions()).Validate();
        options = (options ?? new AlignmentDatasetOptions()).Validate();
        return Task.Run(() =>
        {
            var records = new List<AlignmentRecord>();
            var kinds = new List<SampleKind>();
            var report = AlignmentFileReader.Read(path, readOptions, r =>
            {
                records.Add(r);
                kinds.Add(options.KindOf(r.Query));
            }, progress, cancellationToken);
            return new AlignmentDataset(records, kinds, options, report);
        }, cancellationToken);
    }

    /// <summary>Writes the records in the released format or as JSON Lines (by extension when <paramref name="format"/> is Auto).</summary>
    /// <param name="path">The file to create or overwrite.</param>
    /// <param name="format">The layout.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the file is written.</returns>
    public Task SaveAsync(string path, AlignmentFileFormat format = AlignmentFileFormat.Auto, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return AlignmentFileWriter.WriteAsync(path, _records, format, cancellationToken);
    }

    /// <summary>
    /// Writes interaction records in the reference sandbox's per-agent JSON Lines format (one file per agent,
    /// <c>agent_{id}.jsonl</c>; the same writer and fields as <see cref="SandboxLog.ExportJsonLines"/>), so data
    /// collected here can feed the Python tools. Failed ratings are written as <c>null</c>, never as the reference's
    /// magic 8 / -1.
    /// </summary>
    /// <param name="interactions">The records.</param>
    /// <param name="directory">The output folder (created when missing).</param>
    /// <param name="cancellationToken">Cancels the export.</param>
    /// <returns>The files written.</returns>
    public static Task<IReadOnlyList<string>> ExportSandboxRecordsAsync(IEnumerable<InteractionRecord> interactions, string directory,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(interactions);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        try
        {
            return Task.FromResult(SandboxJsonLines.Write(interactions, directory, cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<IReadOnlyList<string>>(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The one writer is synchronous (the sandbox's log export is too); I/O errors still surface through the task.
            return Task.FromException<IReadOnlyList<string>>(ex);
        }
    }

    /// <summary>
    /// Splits by query: every distinct query goes wholly to one side, so no query is in both. The queries are
    /// shuffled with <paramref name="seed"/> and the first <c>round(fraction * queries)</c> go to validation.
    /// </summary>
    /// <param name="validationFraction">Share of distinct queries for validation, in [0, 1].</param>
    /// <param name="seed">Seed of the shuffle.</param>
    /// <returns>The training and validation datasets.</returns>
    public (AlignmentDataset Train, AlignmentDataset Validation) Split(double validationFraction, int seed = 42)
    {
        if (!(validationFraction >= 0 && validationFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must lie in [0, 1].");
        var queries = _records.Select(r => r.Query).Distinct(StringComparer.Ordinal).ToArray();
        new Random(seed).Shuffle(queries);
        var validation = new HashSet<string>(queries.Take((int)Math.Round(validationFraction * queries.Length)), StringComparer.Ordinal);
        var (tr, tk, vr, vk) = (new List<AlignmentRecord>(), new List<SampleKind>(), new List<AlignmentRecord>(), new List<SampleKind>());
        for (int i = 0; i < _records.Count; i++)
        {
            bool isValidation = validation.Contains(_records[i].Query);
            (isValidation ? vr : tr).Add(_records[i]);
            (isValidation ? vk : tk).Add(_kinds[i]);
        }
        return (new AlignmentDataset(tr, tk, Options, null), new AlignmentDataset(vr, vk, Options, null));
    }

    /// <summary>The records of the given kinds only (for the three training stages).</summary>
    /// <param name="kinds">The kinds to keep.</param>
    /// <returns>A dataset with those records.</returns>
    public AlignmentDataset OfKind(params SampleKind[] kinds)
    {
        ArgumentNullException.ThrowIfNull(kinds);
        var keep = new HashSet<SampleKind>(kinds);
        var (records, ks) = (new List<AlignmentRecord>(), new List<SampleKind>());
        for (int i = 0; i < _records.Count; i++)
        {
            if (keep.Contains(_kinds[i]))
            {
                records.Add(_records[i]);
                ks.Add(_kinds[i]);
            }
        }
        return new AlignmentDataset(records, ks, Options, null);
    }

    /// <summary>
    /// Tokenizes every query and response once and returns a batcher that cuts padded <see cref="PreferenceBatch"/>es
    /// from them, epoch by epoch.
    /// </summary>
    /// <remarks>Records are tokenized on several threads; Microsoft.ML.Tokenizers tokenizers are safe for that, and a
    /// custom <see cref="Tokenizer"/> must be too.</remarks>
    /// <param name="tokenizer">The tokenizer; GPT-2 BPE (offline) when <see langword="null"/>.</param>
    /// <param name="options">Batching options; defaults when <see langword="null"/>.</param>
    /// <param name="progress">Receives the number of records tokenized so far.</param>
    /// <param name="cancellationToken">Cancels tokenization.</param>
    /// <returns>The batcher.</returns>
    public PreferenceBatcher CreateBatcher(Tokenizer? tokenizer = null, PreferenceBatchOptions? options = null,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        new(this, tokenizer ?? ModelTokenizers.Gpt2(), (options ?? new PreferenceBatchOptions()).Validate(), progress, cancellationToken);

    /// <summary>Counts per kind, rating histograms per kind and length percentiles.</summary>
    /// <param name="tokenizer">When given, lengths are in tokens; otherwise in characters.</param>
    /// <returns>The statistics.</returns>
    public AlignmentDatasetStatistics ComputeStatistics(Tokenizer? tokenizer = null) => AlignmentDatasetStatistics.Compute(this, tokenizer);
}
