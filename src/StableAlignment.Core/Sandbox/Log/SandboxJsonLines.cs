using System.Globalization;
using System.Text.Json;
using StableAlignment.Core.Serialization;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// Writes interaction records as the reference sandbox's per-agent JSON Lines files (spec §2, step 6), one
/// <c>agent_{id}.jsonl</c> per agent with its records in round order. The fields follow the spec's list: agent id,
/// label, round, question, draft, peer ids, peer feedback texts, peer ratings, revised answer, and the observers'
/// alignment and engagement ratings and reasons before (<c>draft_*</c>) and after (<c>revised_*</c>). A failed rating
/// is <c>null</c>, never the reference's magic 8 or -1.
/// </summary>
/// <remarks>The one writer of this format: <see cref="SandboxLog.ExportJsonLines"/> and
/// <c>AlignmentDataset.ExportSandboxRecordsAsync</c> both call it.</remarks>
internal static class SandboxJsonLines
{
    // Text is written as is (UTF-8, astral characters included); only what JSON requires is escaped.
    private static readonly JsonWriterOptions WriterOptions = PlainTextJsonEncoder.WriterOptions;

    /// <summary>Writes one file per agent into <paramref name="directory"/> (created when missing).</summary>
    /// <returns>The files written, in agent order.</returns>
    public static IReadOnlyList<string> Write(IEnumerable<InteractionRecord> interactions, string directory,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(interactions);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        foreach (var agent in interactions.GroupBy(r => r.AgentId).OrderBy(g => g.Key))
        {
            string path = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"agent_{agent.Key}.jsonl"));
            using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            using var writer = new Utf8JsonWriter(stream, WriterOptions);
            foreach (var record in agent.OrderBy(r => r.Round))
            {
                cancellationToken.ThrowIfCancellationRequested();
                WriteRecord(writer, record);
                writer.Flush();
                stream.WriteByte((byte)'\n');
                writer.Reset(stream);
            }
            files.Add(path);
        }
        return files;
    }

    private static void WriteRecord(Utf8JsonWriter w, InteractionRecord r)
    {
        w.WriteStartObject();
        w.WriteNumber("agent_id", r.AgentId);
        w.WriteString("label", r.Label);
        w.WriteNumber("round", r.Round);
        w.WriteString("question", r.Question);
        w.WriteString("draft_answer", r.Draft);
        WriteArray(w, "peer_ids", r.Feedback, (w, f) => w.WriteNumberValue(f.PeerId));
        WriteArray(w, "peer_feedback", r.Feedback, (w, f) => w.WriteStringValue(f.Rating.Reason));
        WriteArray(w, "peer_ratings", r.Feedback, (w, f) => WriteRating(w, f.Rating));
        w.WriteString("revised_answer", r.Revision);
        WriteObservers(w, "draft", r.DraftScores);
        WriteObservers(w, "revised", r.RevisionScores);
        w.WriteNumber("passes", r.Passes);
        w.WriteEndObject();
    }

    private static void WriteObservers(Utf8JsonWriter w, string prefix, IReadOnlyList<ObserverScore> scores)
    {
        WriteArray(w, prefix + "_observer_ids", scores, (w, s) => w.WriteNumberValue(s.ObserverId));
        WriteArray(w, prefix + "_alignment_ratings", scores, (w, s) => WriteRating(w, s.Alignment));
        WriteArray(w, prefix + "_alignment_reasons", scores, (w, s) => w.WriteStringValue(s.Alignment.Reason));
        WriteArray(w, prefix + "_engagement_ratings", scores, (w, s) => WriteRating(w, s.Engagement));
        WriteArray(w, prefix + "_engagement_reasons", scores, (w, s) => w.WriteStringValue(s.Engagement.Reason));
    }

    private static void WriteRating(Utf8JsonWriter w, RatingOutcome rating)
    {
        if (rating.Value is int v) w.WriteNumberValue(v);
        else w.WriteNullValue();
    }

    private static void WriteArray<T>(Utf8JsonWriter w, string name, IEnumerable<T> items, Action<Utf8JsonWriter, T> write)
    {
        w.WriteStartArray(name);
        foreach (var item in items) write(w, item);
        w.WriteEndArray();
    }
}
