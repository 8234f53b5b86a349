using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// Switches an Orleans silo or client to the Stable Alignment sandbox: the silo hosts the agent, observer and world
/// grains on its own model clients; both register an <see cref="ISandboxEngine"/> that builds sandboxes on the cluster.
/// </summary>
public static class OrleansSandboxBuilderExtensions
{
    /// <summary>The name of the grain storage that holds agents' memories and worlds' options.</summary>
    public const string StorageName = "stable-alignment-sandbox";

    /// <summary>
    /// Hosts the sandbox's grains on this silo, with this silo's model clients, call policy and embeddings. With
    /// <see cref="OrleansSandboxSiloOptions.SqliteStoragePath"/> the grain state goes to that SQLite file; otherwise
    /// register a grain storage named <see cref="StorageName"/> (for example ADO.NET with PostgreSQL).
    /// </summary>
    /// <param name="builder">The silo builder.</param>
    /// <param name="options">The silo's clients and storage; defaults (the offline society, hashing embeddings) when null.</param>
    /// <returns>The builder.</returns>
    public static ISiloBuilder UseStableAlignmentSandbox(this ISiloBuilder builder, OrleansSandboxSiloOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options = (options ?? new OrleansSandboxSiloOptions()).Validate();
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<SiloWorlds>();
        builder.AddPlacementDirector<AgentPlacement, AgentPlacementDirector>();
        if (options.SqliteStoragePath is string path)
            builder.Services.AddGrainStorage(StorageName, (services, _) => new SqliteGrainStorage(path, services.GetRequiredService<Serializer>()));
        AddEngine(builder.Services);
        return builder;
    }

    /// <summary>Lets this client build sandboxes on the cluster: registers an <see cref="ISandboxEngine"/> over it.</summary>
    /// <param name="builder">The client builder.</param>
    /// <returns>The builder.</returns>
    public static IClientBuilder UseStableAlignmentSandbox(this IClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        AddEngine(builder.Services);
        return builder;
    }

    private static void AddEngine(IServiceCollection services) =>
        services.TryAddSingleton<ISandboxEngine>(sp => new OrleansSandboxEngine(sp.GetRequiredService<IGrainFactory>(), loggerFactory: sp.GetService<ILoggerFactory>()));
}

/// <summary>
/// The Orleans engine: sandboxes whose agents are grains of a cluster. It uses the world's questions and memory seeds
/// from <see cref="SandboxBackends"/>; the model clients and embeddings are the silos' own
/// (<see cref="OrleansSandboxSiloOptions"/>), so <see cref="SandboxBackends.AgentClient"/>,
/// <see cref="SandboxBackends.ObserverClient"/> and <see cref="SandboxBackends.Embeddings"/> are not called.
/// </summary>
public sealed class OrleansSandboxEngine : ISandboxEngine
{
    private readonly IGrainFactory _grains;
    private readonly OrleansRunOptions? _run;
    private readonly ILoggerFactory? _loggerFactory;

    /// <summary>An engine over a cluster.</summary>
    /// <param name="grains">The cluster (an <c>IClusterClient</c>, or a silo's grain factory).</param>
    /// <param name="run">How the coordinator waits for and retries grains; defaults when null.</param>
    /// <param name="loggerFactory">The default logger factory of its sandboxes; null logs nothing.</param>
    public OrleansSandboxEngine(IGrainFactory grains, OrleansRunOptions? run = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        _grains = grains;
        _run = run?.Validate();
        _loggerFactory = loggerFactory;
    }

    /// <inheritdoc />
    public ISandbox Create(SandboxOptions options, SandboxBackends backends, SandboxSchedule? schedule = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(backends);
        return OrleansSandboxFactory.Create(_grains, options, backends.Questions, backends.MemorySeeds, schedule, _run, loggerFactory ?? _loggerFactory);
    }
}

/// <summary>Builds sandboxes whose agents are grains of an Orleans cluster (the silos run <c>UseStableAlignmentSandbox</c>).</summary>
public static class OrleansSandboxFactory
{
    /// <summary>
    /// A world on the cluster. With the same seed, options and (offline) model it writes the same log, byte for byte, as
    /// the in-process sandbox of <see cref="SandboxFactory"/>, whatever the number of silos, and a silo that dies
    /// mid-run costs only the interactions it had in flight, which are redone elsewhere.
    /// </summary>
    /// <param name="grains">The cluster (an <c>IClusterClient</c>, or a silo's grain factory).</param>
    /// <param name="options">The world and its protocol.</param>
    /// <param name="questions">The question pool; null uses the built-in scenario bank.</param>
    /// <param name="memorySeeds">Persona label to memory seed pairs; null uses the built-in bank's.</param>
    /// <param name="schedule">How agents are scheduled; defaults when null.</param>
    /// <param name="run">How the coordinator waits for and retries grains; defaults when null.</param>
    /// <param name="loggerFactory">Receives the run's log messages; null logs nothing.</param>
    /// <returns>The sandbox.</returns>
    /// <exception cref="ArgumentException">An option is invalid or a persona has no memory seeds (named).</exception>
    public static ISandbox Create(IGrainFactory grains, SandboxOptions options, QuestionSource? questions = null,
        IReadOnlyDictionary<string, IReadOnlyList<QuestionAnswer>>? memorySeeds = null, SandboxSchedule? schedule = null,
        OrleansRunOptions? run = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new OrleansSandbox(grains, options, questions ?? QuestionSource.BuiltIn(), memorySeeds ?? ScenarioBank.Shared.MemorySeeds, schedule, run,
            loggerFactory);
    }
}

/// <summary>
/// How the Orleans engine's coordinator waits for its grains. None of it changes the log. A repeated request is
/// answered from what the grain stored, so a short <see cref="ReplyTimeout"/> costs a repeated message, never a
/// second run of an interaction; it bounds how long a reply lost with a dead silo or gateway is waited for.
/// </summary>
public sealed record OrleansRunOptions
{
    /// <summary>How long one attempt waits for a grain's reply before asking again. Default 30 s.</summary>
    public TimeSpan ReplyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts of one request across cluster faults before the run fails. Default 60.</summary>
    public int MaxAttempts { get; init; } = 60;

    /// <summary>
    /// The PostgreSQL database (<c>postgres://user:password@host:port/database</c>) that keeps the cluster's copy of
    /// each run's log, beside the local one: every interaction is committed there first, so a coordinator started on
    /// another machine, with an empty run folder, resumes the run where the last one stopped. Null (the default) keeps
    /// the local log only; <see cref="OrleansSandboxHost.ConnectAsync"/> sets it to the cluster's database.
    /// </summary>
    public string? SharedLog { get; init; }

    /// <summary>
    /// The run's name in <see cref="SharedLog"/>: 1 to 128 letters, digits, '.', '_' or '-'. Null (the default) derives
    /// it from the run's settings and models, so the same settings resume the same run; name runs to keep two runs of
    /// the same settings apart.
    /// </summary>
    public string? RunName { get; init; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid option.</summary>
    /// <returns>This instance, for chaining.</returns>
    public OrleansRunOptions Validate()
    {
        if (SharedLog is not null)
        {
            try
            {
                PostgresCluster.Parse(SharedLog);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"OrleansRunOptions.SharedLog: {e.Message.Split(" (Parameter")[0]}", nameof(SharedLog), e);
            }
        }
        if (RunName is not null && (RunName.Length is 0 or > 128 || !RunName.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')))
            throw new ArgumentException($"OrleansRunOptions.RunName: must be 1 to 128 letters, digits, '.', '_' or '-', got '{RunName}'.", nameof(RunName));
        if (ReplyTimeout <= TimeSpan.Zero) throw new ArgumentException($"OrleansRunOptions.ReplyTimeout: must be positive, got {ReplyTimeout}.", nameof(ReplyTimeout));
        if (MaxAttempts < 1) throw new ArgumentException($"OrleansRunOptions.MaxAttempts: must be at least 1, got {MaxAttempts}.", nameof(MaxAttempts));
        return this;
    }
}
