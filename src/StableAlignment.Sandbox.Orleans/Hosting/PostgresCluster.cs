using System.Reflection;
using Npgsql;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>A PostgreSQL cluster address (postgres://…) and the Orleans tables in its database.</summary>
internal static class PostgresCluster
{
    /// <summary>The ADO.NET invariant Orleans loads Npgsql by.</summary>
    public const string Invariant = "Npgsql";

    /// <summary>The Orleans scripts, in the order they must run (Main creates the query table the others fill).</summary>
    private static readonly string[] Scripts = ["PostgreSQL-Main.sql", "PostgreSQL-Clustering.sql", "PostgreSQL-Persistence.sql"];

    /// <summary><c>postgres://user:password@host:port/database</c> (or <c>postgresql://</c>) as an Npgsql connection string.</summary>
    /// <exception cref="ArgumentException">The address is not such a URI (named, with what is wrong; the password is never repeated).</exception>
    public static string Parse(string cluster)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cluster);
        if (!Uri.TryCreate(cluster, UriKind.Absolute, out var uri) || uri.Scheme is not ("postgres" or "postgresql"))
            throw new ArgumentException("The cluster address must be postgres://user:password@host:port/database.", nameof(cluster));
        string database = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/'));
        if (database.Length == 0) throw new ArgumentException($"The cluster address names no database (postgres://{uri.Host}:{uri.Port}/DATABASE).", nameof(cluster));
        string[] user = uri.UserInfo.Split(':', 2);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Database = database,
        };
        if (user[0].Length > 0) builder.Username = Uri.UnescapeDataString(user[0]);
        if (user.Length > 1) builder.Password = Uri.UnescapeDataString(user[1]);
        return builder.ConnectionString;
    }

    /// <summary>Creates the Orleans tables when they are missing; silos starting together take turns (an advisory lock).</summary>
    public static async Task EnsureSchemaAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, "SELECT pg_advisory_lock(727015)", cancellationToken).ConfigureAwait(false);
        try
        {
            await using var exists = new NpgsqlCommand("SELECT to_regclass('orleansquery') IS NOT NULL", connection);
            if ((bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!) return;
            foreach (string script in Scripts) await ExecuteAsync(connection, Read(script), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await ExecuteAsync(connection, "SELECT pg_advisory_unlock(727015)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string Read(string script)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"StableAlignment.Sandbox.Orleans.Sql.{script}")
            ?? throw new InvalidOperationException($"The Orleans script {script} is not embedded in this assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
