namespace StableAlignment.Core.Sandbox;

/// <summary>
/// The schedule of one run as both engines fill it (the in-process sandbox and the Orleans coordinator): a slot per
/// interaction from the resume point on, holding its result once it returns, and a gate per round that opens when the
/// round is committed. Interactions finish in any order; <see cref="CommitInOrderAsync"/> commits them in schedule
/// order and stops at the first gap, so the log is always a prefix of the schedule.
/// </summary>
/// <typeparam name="T">What an interaction returns to the committer.</typeparam>
internal sealed class InteractionSlots<T>
{
    private readonly TaskCompletionSource[] _returned;   // by seq - start: the agent's memory holds this round
    private readonly TaskCompletionSource<T>[] _results; // by seq - start
    private readonly TaskCompletionSource[] _roundCommitted;

    public InteractionSlots(long start, long total, int perRound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(perRound);
        Start = start;
        Total = Math.Max(total, start);
        PerRound = perRound;
        int count = checked((int)(Total - start));
        _returned = [.. Enumerable.Range(0, count).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))];
        _results = [.. Enumerable.Range(0, count).Select(_ => new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously))];
        _roundCommitted = [.. Enumerable.Range(0, (int)(Total / perRound)).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))];
        for (int r = 0; r < _roundCommitted.Length; r++)
        {
            if ((long)(r + 1) * perRound <= start) _roundCommitted[r].SetResult();
        }
    }

    /// <summary>The first interaction of this run (the log's count when it began).</summary>
    public long Start { get; }

    /// <summary>The end of the schedule (rounds x agents).</summary>
    public long Total { get; }

    /// <summary>Interactions per round (active agents).</summary>
    public int PerRound { get; }

    /// <summary>The first round at or after the resume point in which agent number <paramref name="ordinal"/> acts.</summary>
    public long FirstRound(int ordinal) => Start <= ordinal ? 0 : (Start - ordinal + PerRound - 1) / PerRound;

    /// <summary>Waits until round <paramref name="round"/> may start: at most <paramref name="maxRoundsAhead"/> rounds ahead of the log.</summary>
    public Task GateAsync(long round, int maxRoundsAhead, CancellationToken cancellationToken)
    {
        long gate = round - 1 - maxRoundsAhead;
        return gate >= 0 ? _roundCommitted[gate].Task.WaitAsync(cancellationToken) : Task.CompletedTask;
    }

    /// <summary>Completes when interaction <paramref name="seq"/> has returned (its agent's memory holds it); a skipped one cancels.</summary>
    public Task ReturnedAsync(long seq, CancellationToken cancellationToken) =>
        seq < Start ? Task.CompletedTask : _returned[seq - Start].Task.WaitAsync(cancellationToken);

    /// <summary>Interaction <paramref name="seq"/> returned <paramref name="result"/>.</summary>
    public void Complete(long seq, T result)
    {
        _returned[seq - Start].SetResult();
        _results[seq - Start].SetResult(result);
    }

    /// <summary>Interaction <paramref name="seq"/> failed: the committer stops there with <paramref name="error"/>.</summary>
    public void Fault(long seq, Exception error) => _results[seq - Start].TrySetException(error);

    /// <summary>Releases everyone waiting on this agent from <paramref name="seq"/> on; the committer stops at the first gap.</summary>
    public void Skip(long seq)
    {
        for (long s = seq; s < Total; s += PerRound)
        {
            _returned[s - Start].TrySetCanceled(CancellationToken.None);
            _results[s - Start].TrySetCanceled(CancellationToken.None);
        }
    }

    /// <summary>
    /// Commits the interactions in schedule order as they return, opening each round's gate once its last interaction
    /// is committed. Stops at the first gap (a skipped interaction), at <paramref name="stop"/>, or at the first
    /// failure, which it returns: an interaction's own, or its commit's. Those before it are committed.
    /// </summary>
    /// <param name="commit">Writes interaction seq.</param>
    /// <param name="committed">Called after each commit, with the round it completed, if any.</param>
    /// <param name="stop">Stops before the next commit (the caller cancelled).</param>
    public async Task<Exception?> CommitInOrderAsync(Func<long, T, ValueTask> commit, Action<long, int?> committed, CancellationToken stop)
    {
        for (long seq = Start; seq < Total; seq++)
        {
            if (stop.IsCancellationRequested) return null;
            T result;
            try
            {
                result = await _results[seq - Start].Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return null;
            }
            catch (Exception ex)
            {
                return ex;
            }
            try
            {
                await commit(seq, result).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                return ex;
            }
            int? round = (seq + 1) % PerRound == 0 ? (int)(seq / PerRound) : null;
            if (round is int r) _roundCommitted[r].TrySetResult();
            committed(seq, round);
        }
        return null;
    }
}

/// <summary>Refuses a second concurrent run of one sandbox: agents' memories belong to one run at a time.</summary>
internal sealed class OneRunAtATime
{
    private int _running;

    /// <summary>Enters the run; dispose the result when it ends.</summary>
    /// <exception cref="InvalidOperationException">A run is already in progress.</exception>
    public Scope Enter() => Interlocked.Exchange(ref _running, 1) == 0 ? new Scope(this)
        : throw new InvalidOperationException("This sandbox is already running; agents' memories belong to one run at a time.");

    /// <summary>The run in progress; disposing it lets the next one start.</summary>
    internal readonly struct Scope(OneRunAtATime owner) : IDisposable
    {
        public void Dispose() => Volatile.Write(ref owner._running, 0);
    }
}
