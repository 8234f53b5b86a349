using System.Text;
using StableAlignment.Core.Data;

namespace StableAlignment.Core.Tests.Data;

public sealed class AlignmentFileTests : IDisposable
{
    private readonly TempFolder _dir = new("sa-data-");

    public void Dispose() => _dir.Dispose();

    private string WriteFile(string name, string text) => WriteFile(name, Encoding.UTF8.GetBytes(text));

    private string WriteFile(string name, byte[] bytes)
    {
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static List<AlignmentRecord> SampleRecords() =>
    [
        new("### Instruction:\nWhy is the sky blue?\n\n### Response:", ["Rayleigh scattering.", "Because \"blue\" — é ✓ 😀\nnew line"], [7, 4.5], ["gpt-3.5", ""]),
        new("### Instruction:\nQ2 Please comment on the response in the input in terms of how well it is aligned with shared social values.\n\n### Input:\nd\n\n### Response:", ["ok"], [1], ["m"]),
    ];

    [Theory]
    [InlineData("data.json", AlignmentFileFormat.JsonArray)]
    [InlineData("data.jsonl", AlignmentFileFormat.JsonLines)]
    public async Task Released_format_round_trips_through_samples_and_back(string name, AlignmentFileFormat format)
    {
        var original = SampleRecords();
        string path = _dir.File(name);
        await AlignmentDataset.FromRecords(original).SaveAsync(path, format);

        var loaded = await AlignmentDataset.LoadAsync(path);
        // Records -> samples -> records again, then to disk and back once more.
        var rebuilt = AlignmentDataset.FromSamples(loaded.ToSamples(), loaded.Options);
        string again = _dir.File("again-" + name);
        await rebuilt.SaveAsync(again, format);
        var reloaded = await AlignmentDataset.LoadAsync(again);

        foreach (var ds in new[] { loaded, rebuilt, reloaded })
        {
            Assert.Equal(original.Count, ds.Records.Count);
            for (int i = 0; i < original.Count; i++)
                Assert.True(original[i].ContentEquals(ds.Records[i]), $"record {i} differs");
        }
        Assert.Equal([SampleKind.Imitation, SampleKind.SelfCritic], loaded.Kinds);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(again));
    }

    [Theory]
    [InlineData("astral.json", AlignmentFileFormat.JsonArray)]
    [InlineData("astral.jsonl", AlignmentFileFormat.JsonLines)]
    public async Task Text_is_written_as_utf8_as_is_astral_characters_included(string name, AlignmentFileFormat format)
    {
        string response = "I feel 😢 — 汉字, \"quoted\", back\\slash, tab\tand\u0001control";
        var ds = AlignmentDataset.FromRecords([new AlignmentRecord("### Instruction:\nÇa va? 🙂\n\n### Response:", [response], [5], [""])]);
        string path = _dir.File(name);
        await ds.SaveAsync(path, format);
        byte[] bytes = File.ReadAllBytes(path);
        string text = Encoding.UTF8.GetString(bytes);
        // The crying face is U+1F622: four UTF-8 bytes in the file, never a surrogate-pair escape.
        Assert.Contains("😢", text, StringComparison.Ordinal);
        Assert.True(bytes.AsSpan().IndexOf(new byte[] { 0xF0, 0x9F, 0x98, 0xA2 }) >= 0);
        Assert.DoesNotContain("\\uD83D", text, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("汉字", text, StringComparison.Ordinal);
        // Only what JSON requires is escaped, and an independent parser reads back the same strings.
        Assert.Contains("\\u0001", text, StringComparison.Ordinal);
        using var doc = System.Text.Json.JsonDocument.Parse(format == AlignmentFileFormat.JsonLines ? text.Trim() : text);
        var record = format == AlignmentFileFormat.JsonLines ? doc.RootElement : doc.RootElement[0];
        Assert.Equal(response, record.GetProperty("responses")[0].GetString());
        Assert.Equal("### Instruction:\nÇa va? 🙂\n\n### Response:", record.GetProperty("query").GetString());
    }

    [Fact]
    public async Task Reader_accepts_the_released_layout_with_extra_fields_bom_and_missing_models()
    {
        string text = "\uFEFF[\n  {\"query\": \"q1\", \"responses\": [\"a\", \"b\"], \"scores\": [1, 7.0], \"extra\": {\"x\": [1, 2]}},\n  {\"models\": [\"m\"], \"scores\": [3], \"responses\": [\"c\"], \"query\": \"q2\"}\n]\n";
        var ds = await AlignmentDataset.LoadAsync(WriteFile("bom.json", text));
        Assert.Equal(2, ds.Records.Count);
        Assert.Equal(["", ""], ds.Records[0].Models);
        Assert.Equal([1.0, 7.0], ds.Records[0].Scores);
        Assert.Equal("q2", ds.Records[1].Query);
        Assert.Equal(2, ds.LoadReport!.RecordsRead);
    }

    [Fact]
    public async Task Records_larger_than_the_read_buffer_stream_through()
    {
        var big = new string('x', 5000);
        var records = Enumerable.Range(0, 50).Select(i => new AlignmentRecord("q" + i, [big + i, "short"], [i % 7 + 1, 2], ["", ""])).ToList();
        string path = _dir.File("big.json");
        await AlignmentDataset.FromRecords(records).SaveAsync(path);
        var ds = await AlignmentDataset.LoadAsync(path, new AlignmentReadOptions { BufferSize = 64 });
        Assert.Equal(50, ds.Records.Count);
        Assert.All(records.Zip(ds.Records), p => Assert.True(p.First.ContentEquals(p.Second)));
    }

    [Fact]
    public async Task Empty_array_and_blank_lines_give_empty_datasets()
    {
        Assert.Empty((await AlignmentDataset.LoadAsync(WriteFile("e.json", " [ ] "))).Records);
        Assert.Single((await AlignmentDataset.LoadAsync(WriteFile("e.jsonl", "\n\n{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]}\r\n\n"))).Records);
    }

    // Each bad case: (file text, the text where the problem is reported, expected record index, words in the problem).
    public static TheoryData<string, string, string, int, string> BadInputs => new()
    {
        { "malformed", "[\n{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]},\n{\"query\":\"q\",\"responses\":[\"r\" \"s\"],\"scores\":[2]}\n]", "\"s\"", 1, "malformed JSON" },
        { "lengths", "[\n{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]},\n{\"query\":\"q\",\"responses\":[\"r\",\"s\"],\"scores\":[2]}\n]", "}\n]", 1, "2 responses but 1 scores" },
        { "non-numeric", "[\n{\"query\":\"q\",\"responses\":[\"r\",\"s\"],\"scores\":[2,\"high\"]}\n]", "\"high\"", 0, "not a number" },
        { "nan", "[\n{\"query\":\"q\",\"responses\":[\"r\"],\n\"scores\":[NaN]}\n]", "NaN", 0, "NaN" },
        { "out-of-scale", "[\n{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]},\n{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[8]}]", "8]", 1, "outside the scale" },
        { "empty-query", "[{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]},\n\n{\"query\":\"  \",\"responses\":[\"r\"],\"scores\":[2]}]", "\"  \"", 1, "query is empty" },
        { "empty-response", "[{\"query\":\"q\",\"responses\":[\"r\",\"\"],\"scores\":[2,3]}]", "\"\"]", 0, "response 1 is empty" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_input_names_file_record_line_offset_and_problem(string name, string text, string at, int record, string problem)
    {
        string path = WriteFile(name + ".json", text);
        var ex = await Assert.ThrowsAsync<AlignmentDataException>(() => AlignmentDataset.LoadAsync(path));

        // The expected position is found independently: the first occurrence of `at` in the text.
        int charIndex = text.IndexOf(at, StringComparison.Ordinal);
        long expectedOffset = Encoding.UTF8.GetByteCount(text.AsSpan(0, charIndex));
        long expectedLine = 1 + text.AsSpan(0, charIndex).Count('\n');
        Assert.Equal(path, ex.Issue.FilePath);
        Assert.Equal(record, ex.Issue.RecordIndex);
        Assert.Equal(expectedLine, ex.Issue.Line);
        Assert.Equal(expectedOffset, ex.Issue.ByteOffset);
        Assert.Contains(problem, ex.Issue.Problem, StringComparison.Ordinal);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains($"record {record}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_utf8_is_reported_with_its_record()
    {
        var head = Encoding.UTF8.GetBytes("{\"query\":\"q\",\"responses\":[\"ok\"],\"scores\":[2]}\n{\"query\":\"q\",\"responses\":[\"b");
        var tail = Encoding.UTF8.GetBytes("d\"],\"scores\":[2]}\n");
        byte[] bytes = [.. head, 0xC3, 0x28, .. tail];
        string path = WriteFile("utf8.jsonl", bytes);
        var ex = await Assert.ThrowsAsync<AlignmentDataException>(() => AlignmentDataset.LoadAsync(path));
        Assert.Equal(1, ex.Issue.RecordIndex);
        Assert.Equal(2, ex.Issue.Line);
        Assert.Contains("UTF-8", ex.Issue.Problem, StringComparison.Ordinal);
        // The problem lies inside the second line, at or after the string that holds the bad bytes.
        Assert.InRange(ex.Issue.ByteOffset, head.Length - 2, head.Length + 2);
    }

    [Fact]
    public async Task Lenient_mode_skips_bad_records_and_reports_them()
    {
        string text = string.Join("\n",
            "{\"query\":\"q1\",\"responses\":[\"r\"],\"scores\":[2]}",
            "{\"query\":\"q2\",\"responses\":[\"r\",\"s\"],\"scores\":[2]}",
            "{\"query\":\"q3\",\"responses\":[\"r\"],\"scores\":[9]}",
            "{not json",
            "{\"query\":\"q5\",\"responses\":[\"r\"],\"scores\":[3]}");
        var ds = await AlignmentDataset.LoadAsync(WriteFile("lenient.jsonl", text), new AlignmentReadOptions { Lenient = true });
        Assert.Equal(["q1", "q5"], ds.Records.Select(r => r.Query));
        Assert.Equal(2, ds.LoadReport!.RecordsRead);
        Assert.Equal(3, ds.LoadReport.RecordsSkipped);
        Assert.Equal([1L, 2L, 3L], ds.LoadReport.Issues.Select(i => i.RecordIndex));
        Assert.Equal([2L, 3L, 4L], ds.LoadReport.Issues.Select(i => i.Line));
    }

    [Fact]
    public async Task Lenient_mode_skips_bad_records_inside_an_array_even_across_buffer_refills()
    {
        string text = "[\n" + string.Join(",\n",
            "{\"query\":\"q1\",\"responses\":[\"r\"],\"scores\":[2]}",
            "{\"query\":\"q2\",\"scores\":[\"bad\", 3, 4, 5, 6, 7, 1, 2, 3],\"responses\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
            "{\"query\":\"q3\",\"responses\":[\"r\"],\"scores\":[3]}") + "\n]";
        var ds = await AlignmentDataset.LoadAsync(WriteFile("lenient.json", text), new AlignmentReadOptions { Lenient = true, BufferSize = 16 });
        Assert.Equal(["q1", "q3"], ds.Records.Select(r => r.Query));
        var issue = Assert.Single(ds.LoadReport!.Issues);
        Assert.Equal((1L, 3L), (issue.RecordIndex, issue.Line));
        Assert.Equal(Encoding.UTF8.GetByteCount(text[..text.IndexOf("\"bad\"", StringComparison.Ordinal)]), issue.ByteOffset);
    }

    [Fact]
    public async Task Json_lines_refuse_a_second_value_on_a_line()
    {
        string path = WriteFile("two.jsonl", "{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]} {\"query\":\"x\"}\n");
        var ex = await Assert.ThrowsAsync<AlignmentDataException>(() => AlignmentDataset.LoadAsync(path));
        Assert.Contains("unexpected data after the record", ex.Issue.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lenient_mode_still_stops_at_broken_array_structure()
    {
        string path = WriteFile("broken.json", "[{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]} {\"query\":\"q\"}]");
        var ex = await Assert.ThrowsAsync<AlignmentDataException>(() => AlignmentDataset.LoadAsync(path, new AlignmentReadOptions { Lenient = true }));
        Assert.Contains("expected ','", ex.Issue.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Truncated_file_is_reported()
    {
        string path = WriteFile("cut.json", "[{\"query\":\"q\",\"responses\":[\"r\"],\"scores\":[2]},{\"query\":\"q\",\"resp");
        var ex = await Assert.ThrowsAsync<AlignmentDataException>(() => AlignmentDataset.LoadAsync(path));
        Assert.Equal(1, ex.Issue.RecordIndex);
    }
}
