using System.Globalization;
using Microsoft.Data.Sqlite;
using Orleans.Serialization;
using Orleans.Storage;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// Grain storage in one SQLite file, for a cluster on one machine: one row per grain state with an integer ETag, so a
/// stale activation's write fails with <see cref="InconsistentStateException"/> instead of overwriting newer state.
/// States are written with the Orleans serializer.
/// </summary>
internal sealed class SqliteGrainStorage : IGrainStorage, IDisposable
{
    private readonly Serializer _serializer;
    private readonly SqliteConnection _connection;
    private readonly Lock _lock = new();

    public SqliteGrainStorage(string path, Serializer serializer)
    {
        _serializer = serializer;
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false, DefaultTimeout = 60 }.ToString());
        _connection.Open();
        Execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            PRAGMA busy_timeout = 60000;
            CREATE TABLE IF NOT EXISTS grain_state (
                state_name TEXT NOT NULL, grain_id TEXT NOT NULL, etag INTEGER NOT NULL, data BLOB NOT NULL,
                PRIMARY KEY (state_name, grain_id));
            """);
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        lock (_lock)
        {
            using var c = Command("SELECT etag, data FROM grain_state WHERE state_name = $n AND grain_id = $g", stateName, grainId);
            using var r = c.ExecuteReader();
            if (r.Read())
            {
                grainState.State = _serializer.Deserialize<T>((byte[])r.GetValue(1));
                grainState.ETag = r.GetInt64(0).ToString(CultureInfo.InvariantCulture);
                grainState.RecordExists = true;
            }
            else
            {
                grainState.State = Activator.CreateInstance<T>();
                grainState.ETag = null;
                grainState.RecordExists = false;
            }
        }
        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        byte[] data = _serializer.SerializeToArray(grainState.State);
        lock (_lock)
        {
            long next;
            int rows;
            if (grainState.ETag is null)
            {
                next = 1;
                using var c = Command("INSERT OR IGNORE INTO grain_state (state_name, grain_id, etag, data) VALUES ($n, $g, 1, $d)", stateName, grainId);
                c.Parameters.AddWithValue("$d", data);
                rows = c.ExecuteNonQuery();
            }
            else
            {
                long current = long.Parse(grainState.ETag, CultureInfo.InvariantCulture);
                next = current + 1;
                using var c = Command("UPDATE grain_state SET etag = $e, data = $d WHERE state_name = $n AND grain_id = $g AND etag = $old", stateName, grainId);
                c.Parameters.AddWithValue("$e", next);
                c.Parameters.AddWithValue("$d", data);
                c.Parameters.AddWithValue("$old", current);
                rows = c.ExecuteNonQuery();
            }
            if (rows != 1)
                throw new InconsistentStateException($"Grain state '{stateName}' of {grainId} was written by another activation (ETag {grainState.ETag ?? "none"} is stale).");
            grainState.ETag = next.ToString(CultureInfo.InvariantCulture);
            grainState.RecordExists = true;
        }
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        lock (_lock)
        {
            using var c = Command("DELETE FROM grain_state WHERE state_name = $n AND grain_id = $g", stateName, grainId);
            c.ExecuteNonQuery();
            grainState.ETag = null;
            grainState.RecordExists = false;
            grainState.State = Activator.CreateInstance<T>();
        }
        return Task.CompletedTask;
    }

    private SqliteCommand Command(string sql, string stateName, GrainId grainId)
    {
        var c = _connection.CreateCommand();
        c.CommandText = sql;
        c.Parameters.AddWithValue("$n", stateName);
        c.Parameters.AddWithValue("$g", grainId.ToString());
        return c;
    }

    private void Execute(string sql)
    {
        using var c = _connection.CreateCommand();
        c.CommandText = sql;
        c.ExecuteNonQuery();
    }

    public void Dispose() => _connection.Dispose();
}
