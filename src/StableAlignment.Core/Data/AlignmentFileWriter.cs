using System.Text.Json;
using StableAlignment.Core.Serialization;

namespace StableAlignment.Core.Data;

/// <summary>Writes alignment records as a JSON array or JSON Lines, streaming record by record.</summary>
internal static class AlignmentFileWriter
{
    // Text is written as is (UTF-8, astral characters included); only what JSON requires is escaped.
    private static readonly JsonWriterOptions WriterOptions = PlainTextJsonEncoder.WriterOptions;

    public static async Task WriteAsync(string path, IEnumerable<AlignmentRecord> records, AlignmentFileFormat format,
        CancellationToken cancellationToken)
    {
        if (format == AlignmentFileFormat.Auto)
        {
            string ext = Path.GetExtension(path);
            format = ext.Equals(".jsonl", StringComparison.OrdinalIgnoreCase) || ext.Equals(".ndjson", StringComparison.OrdinalIgnoreCase)
                ? AlignmentFileFormat.JsonLines
                : AlignmentFileFormat.JsonArray;
        }
        await using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        await using var writer = new Utf8JsonWriter(stream, WriterOptions);
        bool lines = format == AlignmentFileFormat.JsonLines;
        if (!lines)
            writer.WriteStartArray();
        long n = 0;
        foreach (var record in records)
        {
            WriteRecord(writer, record);
            if (lines)
            {
                await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.WriteByte((byte)'\n');
                writer.Reset(stream);
            }
            else if (writer.BytesPending > 1 << 16)
            {
                await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            if ((++n & 1023) == 0)
                cancellationToken.ThrowIfCancellationRequested();
        }
        if (!lines)
            writer.WriteEndArray();
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void WriteRecord(Utf8JsonWriter w, AlignmentRecord r)
    {
        w.WriteStartObject();
        w.WriteString("query", r.Query);
        w.WriteStartArray("responses");
        foreach (var s in r.Responses)
            w.WriteStringValue(s);
        w.WriteEndArray();
        w.WriteStartArray("scores");
        foreach (var s in r.Scores)
            w.WriteNumberValue(s);
        w.WriteEndArray();
        w.WriteStartArray("models");
        foreach (var s in r.Models)
            w.WriteStringValue(s);
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
