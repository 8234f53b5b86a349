using System.Text.Json;

namespace StableAlignment.Core.Data;

/// <summary>
/// Streams alignment records out of a JSON array or JSON Lines file with <see cref="Utf8JsonReader"/> over a
/// growable byte window, so memory is bounded by the largest record, never by the file.
/// </summary>
internal sealed class AlignmentFileReader : IDisposable
{
    private readonly string _path;
    private readonly AlignmentReadOptions _options;
    private readonly FileStream _stream;
    private readonly List<AlignmentDataIssue> _issues = [];
    private byte[] _buffer;
    private int _start;          // first unconsumed byte in _buffer
    private int _end;            // one past the last valid byte in _buffer
    private long _bufferOffset;  // file offset of _buffer[0]
    private long _lineAtStart = 1;
    private bool _eof;
    private long _recordIndex;
    private long _read;
    private long _skipped;

    private AlignmentFileReader(string path, AlignmentReadOptions options)
    {
        _path = path;
        _options = options;
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        _buffer = new byte[options.BufferSize];
    }

    public void Dispose() => _stream.Dispose();

    /// <summary>Reads every record of <paramref name="path"/>, handing each accepted one to <paramref name="onRecord"/>.</summary>
    public static AlignmentLoadReport Read(string path, AlignmentReadOptions options, Action<AlignmentRecord> onRecord,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        using var reader = new AlignmentFileReader(path, options);
        reader.Run(onRecord, progress, cancellationToken);
        return new AlignmentLoadReport(reader._read, reader._skipped, reader._issues);
    }

    private void Run(Action<AlignmentRecord> onRecord, IProgress<long>? progress, CancellationToken ct)
    {
        Fill();
        if (_end - _start >= 3 && _buffer[_start] == 0xEF && _buffer[_start + 1] == 0xBB && _buffer[_start + 2] == 0xBF)
            _start += 3; // UTF-8 byte order mark
        var format = _options.Format;
        if (format == AlignmentFileFormat.Auto)
            format = DetectFormat();

        void Accept(AlignmentRecord r)
        {
            onRecord(r);
            _read++;
            if ((_read & 4095) == 0)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Report(_read);
            }
        }

        if (format == AlignmentFileFormat.JsonLines)
            ReadLines(Accept);
        else
            ReadArray(Accept);
        progress?.Report(_read);
    }

    private AlignmentFileFormat DetectFormat()
    {
        string ext = Path.GetExtension(_path);
        if (ext.Equals(".jsonl", StringComparison.OrdinalIgnoreCase) || ext.Equals(".ndjson", StringComparison.OrdinalIgnoreCase))
            return AlignmentFileFormat.JsonLines;
        while (true)
        {
            int i = SkipWhitespace(_start);
            if (i < _end)
                return _buffer[i] == (byte)'[' ? AlignmentFileFormat.JsonArray : AlignmentFileFormat.JsonLines;
            if (_eof)
                return AlignmentFileFormat.JsonArray; // empty file: reported as such by the array reader
            Fill();
        }
    }

    private void ReadLines(Action<AlignmentRecord> accept)
    {
        while (true)
        {
            int nl = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (nl < 0 && !_eof)
            {
                Fill();
                continue;
            }
            int lineLength = nl < 0 ? _end - _start : nl;
            if (nl < 0 && lineLength == 0)
                return;
            var line = _buffer.AsSpan(_start, lineLength);
            if (line.Length > 0 && line[^1] == (byte)'\r')
                line = line[..^1];
            if (!IsBlank(line))
            {
                var status = ParseRecord(line, _start, isFinal: true, out var record, out int length, out var issue);
                if (status == ParseStatus.Ok && !IsBlank(line[length..]))
                    (status, issue) = (ParseStatus.Problem, IssueAt(_start + length, "unexpected data after the record on its line"));
                if (status == ParseStatus.Ok)
                    accept(record!);
                else
                    Fail(issue!, skippable: true);
                _recordIndex++;
            }
            Advance(nl < 0 ? lineLength : lineLength + 1);
            if (nl < 0)
                return;
        }
    }

    private void ReadArray(Action<AlignmentRecord> accept)
    {
        int i = NextNonBlank();
        if (i >= _end)
        {
            Fail(IssueAt(_start, "the file is empty; expected a JSON array of records"), skippable: false);
            return;
        }
        if (_buffer[i] != (byte)'[')
        {
            Fail(IssueAt(i, $"expected '[' to open the array of records, found '{(char)_buffer[i]}'"), skippable: false);
            return;
        }
        Advance(i + 1 - _start);
        bool first = true;
        while (true)
        {
            i = NextNonBlank();
            if (i >= _end)
            {
                Fail(IssueAt(i, "the file ends before the array is closed with ']'"), skippable: false);
                return;
            }
            if (_buffer[i] == (byte)']')
            {
                Advance(i + 1 - _start);
                i = NextNonBlank();
                if (i < _end)
                    Fail(IssueAt(i, "unexpected data after the closing ']'"), skippable: false);
                return;
            }
            if (!first)
            {
                if (_buffer[i] != (byte)',')
                {
                    Fail(IssueAt(i, $"expected ',' or ']' after record {_recordIndex - 1}, found '{(char)_buffer[i]}'"), skippable: false);
                    return;
                }
                Advance(i + 1 - _start);
                i = NextNonBlank();
            }
            Advance(i - _start);
            // One pass: parse straight from the window, reading more whenever the record is not yet whole.
            ParseStatus status;
            AlignmentRecord? record;
            int length;
            AlignmentDataIssue? issue;
            while ((status = ParseRecord(_buffer.AsSpan(_start, _end - _start), _start, _eof, out record, out length, out issue)) == ParseStatus.Incomplete)
                Fill();
            if (status == ParseStatus.Ok)
            {
                accept(record!);
            }
            else
            {
                if (!_options.Lenient)
                    Fail(issue!, skippable: false);
                length = MeasureValue(); // the bad record's extent, so it can be skipped (throws if the JSON is broken)
                Fail(issue!, skippable: true);
            }
            _recordIndex++;
            Advance(length);
            first = false;
        }
    }

    // Length in bytes of the complete JSON value at _start, reading more of the file until it is whole.
    private int MeasureValue()
    {
        while (true)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _eof, default);
            try
            {
                if (reader.Read() && reader.TrySkip())
                    return checked((int)reader.BytesConsumed);
            }
            catch (JsonException ex)
            {
                Fail(IssueFromJson(_start, ex), skippable: false);
            }
            if (_eof)
                Fail(IssueAt(_end, "the file ends inside a record"), skippable: false);
            Fill();
        }
    }

    private enum ParseStatus
    {
        Ok,
        Problem,
        Incomplete,
    }

    // Parses one record object at the start of `json`. With isFinal false, running out of bytes gives Incomplete (read
    // more and retry); `length` is the record's size in bytes when Ok.
    private ParseStatus ParseRecord(ReadOnlySpan<byte> json, int sliceStart, bool isFinal, out AlignmentRecord? record,
        out int length, out AlignmentDataIssue? issue)
    {
        record = null;
        length = 0;
        issue = null;
        var reader = new Utf8JsonReader(json, isFinal, state: default);
        string? query = null;
        List<string>? responses = null;
        List<double>? scores = null;
        List<string>? models = null;
        try
        {
            if (!reader.Read())
                return Short(isFinal, sliceStart, out issue);
            if (reader.TokenType != JsonTokenType.StartObject)
                return Problem(out issue, sliceStart, reader, $"expected a record object, found {reader.TokenType}");
            while (true)
            {
                if (!reader.Read())
                    return Short(isFinal, sliceStart, out issue);
                if (reader.TokenType == JsonTokenType.EndObject)
                    break;
                string name = reader.GetString()!;
                if (!reader.Read())
                    return Short(isFinal, sliceStart, out issue);
                switch (name)
                {
                    case "query":
                        if (reader.TokenType != JsonTokenType.String)
                            return Problem(out issue, sliceStart, reader, $"\"query\" must be a string, found {reader.TokenType}");
                        query = reader.GetString();
                        if (string.IsNullOrWhiteSpace(query))
                            return Problem(out issue, sliceStart, reader, "the query is empty");
                        break;
                    case "responses":
                    case "models":
                        var list = new List<string>();
                        if (reader.TokenType != JsonTokenType.StartArray)
                            return Problem(out issue, sliceStart, reader, $"\"{name}\" must be an array of strings, found {reader.TokenType}");
                        while (true)
                        {
                            if (!reader.Read())
                                return Short(isFinal, sliceStart, out issue);
                            if (reader.TokenType == JsonTokenType.EndArray)
                                break;
                            if (reader.TokenType == JsonTokenType.Null && name == "models")
                            {
                                list.Add("");
                                continue;
                            }
                            if (reader.TokenType != JsonTokenType.String)
                                return Problem(out issue, sliceStart, reader, $"{name}[{list.Count}] must be a string, found {reader.TokenType}");
                            string s = reader.GetString()!;
                            if (name == "responses" && string.IsNullOrWhiteSpace(s))
                                return Problem(out issue, sliceStart, reader, $"response {list.Count} is empty");
                            list.Add(s);
                        }
                        if (name == "responses")
                            responses = list;
                        else
                            models = list;
                        break;
                    case "scores":
                        if (reader.TokenType != JsonTokenType.StartArray)
                            return Problem(out issue, sliceStart, reader, $"\"scores\" must be an array of numbers, found {reader.TokenType}");
                        scores = [];
                        while (true)
                        {
                            if (!reader.Read())
                                return Short(isFinal, sliceStart, out issue);
                            if (reader.TokenType == JsonTokenType.EndArray)
                                break;
                            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out double v))
                            {
                                string shown = reader.TokenType == JsonTokenType.String ? $"\"{reader.GetString()}\"" : reader.TokenType.ToString();
                                return Problem(out issue, sliceStart, reader, $"score {scores.Count} is not a number: {shown}");
                            }
                            if (!double.IsFinite(v) || v < _options.MinScore || v > _options.MaxScore)
                                return Problem(out issue, sliceStart, reader,
                                    $"score {scores.Count} = {v} is outside the scale [{_options.MinScore}, {_options.MaxScore}]");
                            scores.Add(v);
                        }
                        break;
                    default:
                        if (!reader.TrySkip())
                            return Short(isFinal, sliceStart, out issue);
                        break;
                }
            }
        }
        catch (JsonException ex)
        {
            issue = IssueFromJson(sliceStart, ex);
            return ParseStatus.Problem;
        }
        catch (InvalidOperationException ex)
        {
            // GetString refuses text that is not valid UTF-8.
            issue = IssueAt(sliceStart + (int)reader.TokenStartIndex, "invalid UTF-8 in a string: " + ex.Message);
            return ParseStatus.Problem;
        }

        length = checked((int)reader.BytesConsumed);
        int end = sliceStart + length - 1; // the closing brace
        if (query is null)
            return Problem(out issue, end, "the record has no \"query\"");
        if (responses is null)
            return Problem(out issue, end, "the record has no \"responses\"");
        if (scores is null)
            return Problem(out issue, end, "the record has no \"scores\"");
        if (scores.Count != responses.Count)
            return Problem(out issue, end, $"{responses.Count} responses but {scores.Count} scores");
        models ??= [.. Enumerable.Repeat("", responses.Count)];
        if (models.Count != responses.Count)
            return Problem(out issue, end, $"{responses.Count} responses but {models.Count} models");
        record = new AlignmentRecord(query, responses, scores, models);
        return ParseStatus.Ok;
    }

    // Out of bytes: more may come (Incomplete), or, at the end of the data, the record is cut short.
    private ParseStatus Short(bool isFinal, int sliceStart, out AlignmentDataIssue? issue)
    {
        issue = isFinal ? IssueAt(Math.Max(sliceStart, _end), "the record is cut short") : null;
        return isFinal ? ParseStatus.Problem : ParseStatus.Incomplete;
    }

    private ParseStatus Problem(out AlignmentDataIssue? issue, int sliceStart, in Utf8JsonReader reader, string problem)
    {
        issue = IssueAt(sliceStart + (int)reader.TokenStartIndex, problem);
        return ParseStatus.Problem;
    }

    private ParseStatus Problem(out AlignmentDataIssue? issue, int position, string problem)
    {
        issue = IssueAt(position, problem);
        return ParseStatus.Problem;
    }

    private void Fail(AlignmentDataIssue issue, bool skippable)
    {
        if (!skippable || !_options.Lenient)
            throw new AlignmentDataException(issue);
        _skipped++;
        if (_issues.Count < _options.MaxReportedIssues)
            _issues.Add(issue);
    }

    private AlignmentDataIssue IssueAt(int bufferPosition, string problem)
    {
        bufferPosition = Math.Clamp(bufferPosition, _start, _end);
        long line = _lineAtStart + _buffer.AsSpan(_start, bufferPosition - _start).Count((byte)'\n');
        return new AlignmentDataIssue(_path, _recordIndex, line, _bufferOffset + bufferPosition, problem);
    }

    // JsonException positions are relative to the reader's first byte (0-based line, byte within that line).
    private AlignmentDataIssue IssueFromJson(int readerStart, JsonException ex)
    {
        int pos = readerStart;
        for (long l = 0; l < (ex.LineNumber ?? 0) && pos < _end; l++)
        {
            int nl = _buffer.AsSpan(pos, _end - pos).IndexOf((byte)'\n');
            if (nl < 0)
                break;
            pos += nl + 1;
        }
        pos += (int)Math.Min(ex.BytePositionInLine ?? 0, _end - pos);
        string problem = "malformed JSON: " + ex.Message;
        var rest = _buffer.AsSpan(pos, Math.Min(8, _end - pos));
        if (rest.StartsWith("NaN"u8) || rest.StartsWith("Infinity"u8) || rest.StartsWith("-Infinity"u8))
            problem = "a score is NaN or Infinity, which JSON cannot hold: " + ex.Message;
        else if (ex.Message.Contains("UTF-8", StringComparison.OrdinalIgnoreCase) || ex.Message.Contains("UTF8", StringComparison.OrdinalIgnoreCase))
            problem = "invalid UTF-8: " + ex.Message;
        return IssueAt(pos, problem);
    }

    private static bool IsBlank(ReadOnlySpan<byte> s) => s.IndexOfAnyExcept(" \t\r\n"u8) < 0;

    private int SkipWhitespace(int i)
    {
        int k = _buffer.AsSpan(i, _end - i).IndexOfAnyExcept(" \t\r\n"u8);
        return k < 0 ? _end : i + k;
    }

    // Position of the next non-blank byte, reading more when the window holds only blanks; _end at end of file.
    private int NextNonBlank()
    {
        while (true)
        {
            int i = SkipWhitespace(_start);
            if (i < _end || _eof)
                return i;
            Advance(i - _start);
            Fill();
        }
    }

    private void Advance(int count)
    {
        _lineAtStart += _buffer.AsSpan(_start, count).Count((byte)'\n');
        _start += count;
    }

    // Moves the unconsumed bytes to the front, grows the window when it is full, and reads more of the file.
    private void Fill()
    {
        if (_eof)
            return;
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _bufferOffset += _start;
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
            Array.Resize(ref _buffer, checked(_buffer.Length * 2));
        int n = _stream.Read(_buffer, _end, _buffer.Length - _end);
        if (n == 0)
            _eof = true;
        _end += n;
    }
}
