using System.Globalization;
using System.Text.Json;
using Npgsql;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// The cluster's copy of a run's sandbox log, in the cluster's PostgreSQL database, so a run outlives the machine its
/// coordinator ran on. Each interaction is one row keyed by (run, seq) and unique by (run, round, agent), inserted
/// before the coordinator's local SQLite log takes it; inserting a row that is there already changes nothing, so a
/// commit asked again after a lost reply is harmless. A coordinator starting anywhere first brings its local log up to
/// the cluster's (or the cluster's up to a local log that is ahead), then both grow together.
/// </summary>
internal sealed class PostgresRunLog : IAsyncDisposable
{
    private const string Schema = """
        SELECT pg_advisory_xact_lock(727016);
        CREATE TABLE IF NOT EXISTS stable_alignment_runs (
            run TEXT PRIMARY KEY, format TEXT NOT NULL, fingerprint TEXT NOT NULL, agents INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS stable_alignment_interactions (
            run TEXT NOT NULL REFERENCES stable_alignment_runs (run), seq BIGINT NOT NULL, round INTEGER NOT NULL,
            agent_id INTEGER NOT NULL, record TEXT NOT NULL, memory_round INTEGER, memory_question TEXT, memory_answer TEXT,
            tokens_in BIGINT NOT NULL, tokens_out BIGINT NOT NULL,
            PRIMARY KEY (run, seq), UNIQUE (run, round, agent_id));
        """;

    private readonly NpgsqlDataSource _source;
    private readonly string _run;
    private readonly string _name;

    private PostgresRunLog(NpgsqlDataSource source, string run)
    {
        _source = source;
        _run = run;
        var b = new NpgsqlConnectionStringBuilder(source.ConnectionString);
        _name = $"run {run} in the cluster's database {b.Host}:{b.Port}/{b.Database}";
    }

    /// <summary>Interactions of the run in the cluster's log (always the schedule's prefix 0 .. Count-1).</summary>
    public long Count { get; private set; }

    /// <summary>
    /// Opens (creating when missing) the run's log in the database and reconciles it with <paramref name="local"/>: the
    /// rows one has beyond the other are copied over, in schedule order, so both hold the same prefix afterwards.
    /// </summary>
    /// <exception cref="SandboxLogException">The run was logged with other settings, or its rows are not a prefix of the schedule.</exception>
    public static async Task<PostgresRunLog> OpenAsync(string cluster, string run, string fingerprint, int agentsPerRound, SandboxLogWriter local,
        CancellationToken cancellationToken)
    {
        var source = NpgsqlDataSource.Create(PostgresCluster.Parse(cluster));
        var log = new PostgresRunLog(source, run);
        try
        {
            await log.OpenRunAsync(fingerprint, agentsPerRound, cancellationToken).ConfigureAwait(false);
            if (log.Count > local.Count)
            {
                await foreach (var row in log.ReadAsync(local.Count, cancellationToken).ConfigureAwait(false))
                    local.Commit(row.Seq, row.Record, row.MemoryUpdate, row.TokensIn, row.TokensOut);
            }
            else
            {
                foreach (var row in local.Interactions(log.Count).ToList())
                    await log.CommitAsync(row.Seq, row.Record, row.MemoryUpdate, row.TokensIn, row.TokensOut, cancellationToken).ConfigureAwait(false);
            }
            return log;
        }
        catch
        {
            await log.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task OpenRunAsync(string fingerprint, int agentsPerRound, CancellationToken cancellationToken)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            await using (var schema = new NpgsqlCommand(Schema, connection, tx)) await schema.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await using (var insert = new NpgsqlCommand(
                "INSERT INTO stable_alignment_runs (run, format, fingerprint, agents) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", connection, tx))
            {
                Add(insert, _run, SandboxLog.FormatVersion, fingerprint, agentsPerRound);
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var meta = new NpgsqlCommand("""
            SELECT r.format, r.fingerprint, r.agents, (SELECT COUNT(*) FROM stable_alignment_interactions i WHERE i.run = r.run),
                   (SELECT COALESCE(MAX(seq), -1) FROM stable_alignment_interactions i WHERE i.run = r.run)
            FROM stable_alignment_runs r WHERE r.run = $1
            """, connection);
        Add(meta, _run);
        await using var reader = await meta.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (reader.GetString(0) != SandboxLog.FormatVersion)
        {
            throw new SandboxLogException(_name,
                $"The sandbox log of {_name} has format '{reader.GetString(0)}', this version writes '{SandboxLog.FormatVersion}', so it cannot be resumed. " +
                "It was left as it is; name another run (OrleansRunOptions.RunName) to start fresh.", null);
        }
        if (reader.GetString(1) != fingerprint) throw SandboxLogWriter.Mismatch(_name, reader.GetString(1), fingerprint);
        Count = reader.GetInt64(3);
        if (reader.GetInt64(4) != Count - 1)
        {
            throw new SandboxLogException(_name,
                $"The sandbox log of {_name} is corrupted: it is not a prefix of the schedule ({Count} rows, last seq {reader.GetInt64(4)}). It was left as it is.", null);
        }
    }

    /// <summary>
    /// Adds interaction <paramref name="seq"/>, which must be the next one. When the row is there already (a commit asked
    /// again) it must hold the same record; a different one means two coordinators run this run at once.
    /// </summary>
    public async Task CommitAsync(long seq, InteractionRecord record, MemoryEntry? memoryUpdate, long tokensIn, long tokensOut,
        CancellationToken cancellationToken)
    {
        if (seq > Count) throw new InvalidOperationException($"Interaction {seq} committed out of order; the cluster's log holds {Count}.");
        string json = JsonSerializer.Serialize(record, SandboxLog.RecordJson);
        await using var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO stable_alignment_interactions
                (run, seq, round, agent_id, record, memory_round, memory_question, memory_answer, tokens_in, tokens_out)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING
            """, connection))
        {
            Add(insert, _run, seq, record.Round, record.AgentId, json, (object?)memoryUpdate?.Round ?? DBNull.Value,
                (object?)memoryUpdate?.Question ?? DBNull.Value, (object?)memoryUpdate?.Answer ?? DBNull.Value, tokensIn, tokensOut);
            if (await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                // Read in a statement of its own: an earlier attempt of this commit may have finished after the insert began.
                await using var stored = new NpgsqlCommand(
                    "SELECT record FROM stable_alignment_interactions WHERE run = $1 AND (seq = $2 OR (round = $3 AND agent_id = $4)) LIMIT 1", connection);
                Add(stored, _run, seq, record.Round, record.AgentId);
                if (await stored.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string != json)
                {
                    throw new SandboxLogException(_name, string.Create(CultureInfo.InvariantCulture,
                        $"The sandbox log of {_name} already holds interaction {seq} (round {record.Round}, agent {record.AgentId}) with another record: another coordinator is running this run at the same time. Run one coordinator per run; what is logged was left as it is."),
                        null);
                }
            }
        }
        Count = Math.Max(Count, seq + 1);
    }

    private async IAsyncEnumerable<LoggedInteraction> ReadAsync(long fromSeq, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("""
            SELECT seq, record, memory_round, memory_question, memory_answer, tokens_in, tokens_out
            FROM stable_alignment_interactions WHERE run = $1 AND seq >= $2 ORDER BY seq
            """, connection);
        Add(command, _run, fromSeq);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            long seq = reader.GetInt64(0);
            InteractionRecord record;
            try
            {
                record = JsonSerializer.Deserialize<InteractionRecord>(reader.GetString(1), SandboxLog.RecordJson) ?? throw new JsonException("the row holds null");
            }
            catch (JsonException e)
            {
                throw new SandboxLogException(_name, $"The sandbox log of {_name} is corrupted: interaction {seq} is not a readable record ({e.Message}). It was left as it is.", e);
            }
            var update = reader.IsDBNull(2) ? null : new MemoryEntry(reader.GetString(3), reader.GetString(4), reader.GetInt32(2));
            yield return new LoggedInteraction(seq, record, update, reader.GetInt64(5), reader.GetInt64(6));
        }
    }

    private static void Add(NpgsqlCommand command, params object[] values)
    {
        foreach (var value in values) command.Parameters.Add(new NpgsqlParameter { Value = value });
    }

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
