using System.Runtime.InteropServices;
using Spectre.Console;

namespace StableAlignment.Cli;

/// <summary>
/// Ctrl+C and SIGTERM, as the steps' cancellation token. The first signal cancels the token and the process waits for
/// the step to stop where it can keep its work; a second one terminates at once.
/// </summary>
/// <remarks>
/// System.CommandLine's own handling is off because it gives up waiting after two seconds and returns from
/// <c>Main</c> while the step still runs: a training step inside libtorch then dies with the runtime (a segfault or a
/// torch assertion instead of "Cancelled").
/// </remarks>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration[] _registrations;

    public StopSignals() =>
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];

    public CancellationToken Token => _stop.Token;

    private void OnSignal(PosixSignalContext context)
    {
        if (_stop.IsCancellationRequested) return;
        context.Cancel = true;
        AnsiConsole.MarkupLine("[yellow]Stopping[/] where the work done so far can be kept; press Ctrl+C again to stop at once.");
        _stop.Cancel();
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _stop.Dispose();
    }
}
