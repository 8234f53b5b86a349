using System.Globalization;
using System.Text.Json;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Data;

/// <summary>
/// Writes interaction records as the reference sandbox's per-agent JSON Lines logs (spec §2, step 6): agent id,
/// label, round, question, draft, peer ids, peer feedback texts and ratings, revised answer, and the observers'
/// alignment and engagement scores and reasons before and after.
/// </summary>
internal static class SandboxRecordExport
{
    public static async Task<IReadOnlyList<string>> WriteAsync(IEnumerable<InteractionRecord> interactions, string directory,
        CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        foreach (var agent in interactions.GroupBy(r => r.AgentId).OrderBy(g => g.Key))
        {
            string path = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"agent_{agent.Key}.jsonl"));
            await using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            await using var w = new Utf8JsonWriter(stream, AlignmentFileWriter.WriterOptions);
            foreach (var r in agent.OrderBy(r => r.Round))
            {
                cancellationToken.ThrowIfCancellationRequested();
                WriteOne(w, r);
                await w.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.WriteByte((byte)'\n');
                w.Reset(stream);
            }
            files.Add(path);
        }
        return files;
    }

    private static void WriteOne(Utf8JsonWriter w, InteractionRecord r)
    {
        w.WriteStartObject();
        w.WriteNumber("agent_id", r.AgentId);
        w.WriteString("label", r.Label);
        w.WriteNumber("round", r.Round);
        w.WriteString("question", r.Question);
        w.WriteString("draft_answer", r.Draft);
        WriteArray(w, "peer_ids", r.Feedback, (w, f) => w.WriteNumberValue(f.PeerId));
        WriteArray(w, "feedbacks", r.Feedback, (w, f) => w.WriteStringValue(f.Rating.Reason));
        WriteArray(w, "feedback_ratings", r.Feedback, (w, f) => WriteRating(w, f.Rating));
        w.WriteString("revised_answer", r.Revision);
        WriteObserver(w, "draft", r.DraftScores);
        WriteObserver(w, "revision", r.RevisionScores);
        w.WriteNumber("passes", r.Passes);
        w.WriteEndObject();
    }

    private static void WriteObserver(Utf8JsonWriter w, string prefix, IReadOnlyList<ObserverScore> scores)
    {
        WriteArray(w, prefix + "_observer_ids", scores, (w, s) => w.WriteNumberValue(s.ObserverId));
        WriteArray(w, prefix + "_alignment_ratings", scores, (w, s) => WriteRating(w, s.Alignment));
        WriteArray(w, prefix + "_alignment_reasons", scores, (w, s) => w.WriteStringValue(s.Alignment.Reason));
        WriteArray(w, prefix + "_engagement_ratings", scores, (w, s) => WriteRating(w, s.Engagement));
        WriteArray(w, prefix + "_engagement_reasons", scores, (w, s) => w.WriteStringValue(s.Engagement.Reason));
    }

    private static void WriteRating(Utf8JsonWriter w, RatingOutcome rating)
    {
        if (rating.Value is int v)
            w.WriteNumberValue(v);
        else
            w.WriteNullValue();
    }

    private static void WriteArray<T>(Utf8JsonWriter w, string name, IEnumerable<T> items, Action<Utf8JsonWriter, T> write)
    {
        w.WriteStartArray(name);
        foreach (var item in items)
            write(w, item);
        w.WriteEndArray();
    }
}
