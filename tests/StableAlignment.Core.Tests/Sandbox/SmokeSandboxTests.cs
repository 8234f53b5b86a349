using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

public class SmokeSandboxTests
{
    [Fact]
    public async Task Small_offline_world_logs_every_interaction()
    {
        using var dir = new TempFolder();
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small());
        var result = await sandbox.RunAsync(2, dir.File("log.db"));
        Assert.Equal(SandboxStopReason.Completed, result.StopReason);
        Assert.Equal(18, result.InteractionsInLog);
        var records = SandboxLog.ReadRecords(dir.File("log.db"));
        Assert.Equal(18, records.Count);
    }
}
