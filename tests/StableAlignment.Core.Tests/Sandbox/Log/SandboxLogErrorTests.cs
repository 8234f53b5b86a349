using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

/// <summary>A log that cannot be used as it is is reported by file and reason, and never repaired or overwritten.</summary>
public sealed class SandboxLogErrorTests
{
    /// <summary>The offline society under another provider and model name.</summary>
    internal sealed class NamedChatClient(IChatClient inner, string provider, string model) : DelegatingChatClient(inner)
    {
        private readonly ChatClientMetadata _metadata = new(provider, new Uri("http://127.0.0.1:1/v1"), model);

        public override object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceType == typeof(ChatClientMetadata) ? _metadata : base.GetService(serviceType, serviceKey);
    }

    private static async Task<SandboxLogException> RefusedAsync(string path)
    {
        byte[] before = File.ReadAllBytes(path);
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small());
        var ex = await Assert.ThrowsAsync<SandboxLogException>(() => sandbox.RunAsync(1, path));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(path, ex.LogPath);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        return ex;
    }

    [Fact]
    public async Task A_file_that_is_not_sqlite_is_refused_by_name_and_left_as_it_is()
    {
        using var dir = new TempFolder();
        string path = dir.File("sandbox.db");
        File.WriteAllText(path, "not a database at all, but a text file that happens to have this name\n");
        Assert.Contains("not a SQLite database", (await RefusedAsync(path)).Message, StringComparison.Ordinal);
        Assert.Contains("not a SQLite database", Assert.Throws<SandboxLogException>(() => SandboxLog.ReadRecords(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_programs_database_is_not_taken_over()
    {
        using var dir = new TempFolder();
        string path = dir.File("sandbox.db");
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var command = c.CreateCommand();
            command.CommandText = "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);";
            command.ExecuteNonQuery();
        }
        Assert.Contains("not a sandbox log", (await RefusedAsync(path)).Message, StringComparison.Ordinal);
        Assert.Contains("not a sandbox log", Assert.Throws<SandboxLogException>(() => SandboxLog.Summarize(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_file_is_a_new_log_to_the_writer_and_an_empty_one_to_a_reader()
    {
        using var dir = new TempFolder();
        string path = dir.File("sandbox.db");
        File.WriteAllBytes(path, []);
        Assert.Contains("is empty", Assert.Throws<SandboxLogException>(() => SandboxLog.ReadRecords(path)).Message, StringComparison.Ordinal);
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small(grid: 2));
        Assert.Equal(4, (await sandbox.RunAsync(1, path)).InteractionsInLog);
    }

    [Fact]
    public async Task A_corrupted_row_is_reported_with_its_number()
    {
        using var dir = new TempFolder();
        string path = dir.File("sandbox.db");
        await using (var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small(grid: 2))) await sandbox.RunAsync(1, path);
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var command = c.CreateCommand();
            command.CommandText = "UPDATE interactions SET record = '{\"AgentId\": 1, \"Label\": ' WHERE seq = 2";
            command.ExecuteNonQuery();
        }
        var ex = Assert.Throws<SandboxLogException>(() => SandboxLog.ReadRecords(path));
        Assert.Contains("interaction 2", ex.Message, StringComparison.Ordinal);
        Assert.Contains("corrupted", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resuming_with_other_options_names_both_values_and_how_to_start_fresh()
    {
        using var dir = new TempFolder();
        string path = dir.File("sandbox.db");
        await using (var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small(grid: 2))) await sandbox.RunAsync(1, path);
        await using var other = SandboxTestKit.Offline(SandboxTestKit.Small(grid: 3));
        var ex = await Assert.ThrowsAsync<SandboxLogException>(() => other.RunAsync(1, path));
        Assert.Contains("GridSize was '2', this run has '3'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("new run folder", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_log_is_never_extended_by_another_model_and_records_carry_their_model()
    {
        using var dir = new TempFolder();
        string path = dir.File("sandbox.db");
        var options = SandboxTestKit.Small(grid: 2);
        var first = new NamedChatClient(new OfflineSocietyChatClient(options.Seed), "openai", "model-a");
        await using (var sandbox = SandboxTestKit.Offline(options, first, observerClient: new NamedChatClient(new OfflineSocietyChatClient(options.Seed), "openai", "judge-b")))
            await sandbox.RunAsync(1, path);
        Assert.All(SandboxLog.ReadRecords(path), r => Assert.Equal(("model-a", "judge-b"), (r.Model, r.ObserverModel)));
        // The released format's models field names the model of every response built from them.
        var dataset = StableAlignment.Core.Data.AlignmentDataset.FromInteractions(SandboxLog.ReadRecords(path));
        Assert.NotEmpty(dataset.Records);
        Assert.All(dataset.Records, r => Assert.All(r.Models, m => Assert.Equal("model-a", m)));

        var second = new NamedChatClient(new OfflineSocietyChatClient(options.Seed), "openai", "model-c");
        await using var other = SandboxTestKit.Offline(options, second, observerClient: new NamedChatClient(new OfflineSocietyChatClient(options.Seed), "openai", "judge-b"));
        var ex = await Assert.ThrowsAsync<SandboxLogException>(() => other.RunAsync(2, path));
        Assert.Contains("Agents was 'openai/model-a', this run has 'openai/model-c'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_full_disk_is_an_io_error_that_names_the_log()
    {
        var full = SandboxLogWriter.Unwritable("/runs/a/sandbox.db", new SqliteException("database or disk is full", 13));
        Assert.NotNull(full);
        Assert.Contains("/runs/a/sandbox.db", full.Message, StringComparison.Ordinal);
        Assert.Contains("disk is full", full.Message, StringComparison.Ordinal);
        Assert.Null(SandboxLogWriter.Unwritable("/runs/a/sandbox.db", new SqliteException("constraint failed", 19)));
    }
}
