using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;
using StableAlignment.Sandbox.Orleans;

namespace StableAlignment.Core.Tests.Plugins.Orleans;

public sealed class SqliteGrainStorageTests
{
    private sealed class Stored : IGrainState<AgentGrainState>
    {
        public AgentGrainState? State { get; set; } = new();

        public string? ETag { get; set; }

        public bool RecordExists { get; set; }
    }

    [Fact]
    public async Task State_round_trips_and_a_stale_activation_cannot_overwrite_a_newer_write()
    {
        using var dir = new TempFolder();
        using var services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        using var storage = new SqliteGrainStorage(dir.File("grains.db"), services.GetRequiredService<Serializer>());
        var id = GrainId.Create("agent", "run/0");

        var first = new Stored { State = new AgentGrainState { RunKey = "run", AgentId = 0, Persona = "aligned", CompletedRounds = 0 } };
        first.State!.Memory.Add(new StoredMemory("q", "a", -1, [0.5f, -1f]));
        await storage.WriteStateAsync("agent", id, first);

        var read = new Stored();
        await storage.ReadStateAsync("agent", id, read);
        Assert.True(read.RecordExists);
        Assert.Equal((0, "aligned", "run"), (read.State!.AgentId, read.State.Persona, read.State.RunKey));
        Assert.Equal(new[] { 0.5f, -1f }, read.State.Memory.Single().Embedding);
        Assert.Equal(-1, read.State.Memory.Single().Round);

        read.State.CompletedRounds = 3;
        await storage.WriteStateAsync("agent", id, read);          // the newer activation writes
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("agent", id, first)); // the stale one may not

        var again = new Stored();
        await storage.ReadStateAsync("agent", id, again);
        Assert.Equal(3, again.State!.CompletedRounds);
        await storage.ClearStateAsync("agent", id, again);
        var cleared = new Stored();
        await storage.ReadStateAsync("agent", id, cleared);
        Assert.False(cleared.RecordExists);
    }
}
