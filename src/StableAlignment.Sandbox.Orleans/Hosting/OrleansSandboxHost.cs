using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// Ready-made hosts for the Orleans engine, as the <c>stable-alignment</c> tool uses them: a silo process of a
/// PostgreSQL cluster (<c>stable-alignment silo --cluster postgres://…</c>), a cluster of N silos in this process on
/// loopback with SQLite storage (<c>simulate --engine orleans --silos N</c>), and a client of an existing cluster
/// (<c>simulate --engine orleans --cluster postgres://…</c>).
/// </summary>
public static class OrleansSandboxHost
{
    /// <summary>The Orleans cluster id of the sandbox's clusters.</summary>
    public const string ClusterId = "stable-alignment";

    /// <summary>
    /// Runs one silo of the cluster whose membership and grain state live in the PostgreSQL database at
    /// <paramref name="cluster"/> until <paramref name="cancellationToken"/> is cancelled. The first silo creates the
    /// Orleans tables (the scripts kept in this package) when they are missing.
    /// </summary>
    /// <param name="cluster">The database, <c>postgres://user:password@host:port/database</c>.</param>
    /// <param name="silo">The silo's model clients, call policy and embeddings (its storage is the database).</param>
    /// <param name="endpoint">The silo's ports and the address other silos and clients reach it at.</param>
    /// <param name="loggerFactory">Receives the silo's and Orleans' log messages; null logs nothing.</param>
    /// <param name="cancellationToken">Stops the silo (gracefully: its grains move to the other silos).</param>
    /// <returns>A task that completes when the silo has stopped.</returns>
    /// <exception cref="ArgumentException">The address is not a postgres:// URI, or the options are invalid.</exception>
    public static async Task RunSiloAsync(string cluster, OrleansSandboxSiloOptions silo, OrleansSiloEndpoint? endpoint = null,
        ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var database = PostgresCluster.Parse(cluster);
        silo.Validate();
        if (silo.SqliteStoragePath is not null)
            throw new ArgumentException("OrleansSandboxSiloOptions.SqliteStoragePath: a silo of a PostgreSQL cluster keeps its grain state in the database; leave it null.", nameof(silo));
        endpoint ??= new OrleansSiloEndpoint();
        await PostgresCluster.EnsureSchemaAsync(database, cancellationToken).ConfigureAwait(false);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        Forward(builder.Services, loggerFactory);
        builder.UseOrleans(orleans =>
        {
            orleans.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (ClusterId, ClusterId));
            orleans.ConfigureEndpoints(endpoint.Address, endpoint.SiloPort, endpoint.GatewayPort, listenOnAnyHostAddress: !IPAddress.IsLoopback(endpoint.Address));
            orleans.UseAdoNetClustering(o => (o.Invariant, o.ConnectionString) = (PostgresCluster.Invariant, database));
            orleans.AddAdoNetGrainStorage(OrleansSandboxBuilderExtensions.StorageName, o => (o.Invariant, o.ConnectionString) = (PostgresCluster.Invariant, database));
            FastFailover(orleans.Services);
            orleans.UseStableAlignmentSandbox(silo);
        });
        using var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts <paramref name="silos"/> silos in this process on loopback (the first is the primary), each with its own
    /// model-call pipeline, sharing grain state in one SQLite file under <paramref name="storageFolder"/>, and a client.
    /// </summary>
    /// <param name="silos">Silos to start, 1 to 64.</param>
    /// <param name="silo">Every silo's model clients, call policy and embeddings (SqliteStoragePath is set here).</param>
    /// <param name="storageFolder">Where the grain state file goes (created when missing).</param>
    /// <param name="loggerFactory">Receives log messages; null logs nothing.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running cluster; dispose it to stop every silo.</returns>
    public static async Task<OrleansSandboxCluster> StartLocalAsync(int silos, OrleansSandboxSiloOptions silo, string storageFolder,
        ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        if (silos is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(silos), silos, "A local cluster has 1 to 64 silos.");
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentException.ThrowIfNullOrWhiteSpace(storageFolder);
        Directory.CreateDirectory(storageFolder);
        var options = silo with { SqliteStoragePath = Path.Combine(storageFolder, "orleans-grains.db") };
        options.Validate();
        int[] ports = FreePorts(2 * silos);
        var primary = new IPEndPoint(IPAddress.Loopback, ports[0]);
        var hosts = new List<IHost>();
        try
        {
            for (int i = 0; i < silos; i++)
            {
                var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
                Forward(builder.Services, loggerFactory);
                int siloPort = ports[2 * i], gatewayPort = ports[2 * i + 1];
                builder.UseOrleans(orleans =>
                {
                    orleans.UseLocalhostClustering(siloPort, gatewayPort, primary, ClusterId, ClusterId);
                    orleans.Configure<SiloOptions>(o => o.SiloName = $"silo-{i}");
                    FastFailover(orleans.Services);
                    orleans.UseStableAlignmentSandbox(options);
                });
                var host = builder.Build();
                hosts.Add(host);
                await host.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            var gateways = Enumerable.Range(0, silos).Select(i => ports[2 * i + 1]).ToArray();
            var client = await StartClientAsync(orleans => orleans.UseLocalhostClustering(gateways, ClusterId, ClusterId), loggerFactory, cancellationToken)
                .ConfigureAwait(false);
            hosts.Add(client);
            return new OrleansSandboxCluster(hosts, client.Services.GetRequiredService<IClusterClient>(), silos, null, loggerFactory);
        }
        catch
        {
            foreach (var host in Enumerable.Reverse(hosts)) host.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects a client to the cluster whose membership lives in the PostgreSQL database at <paramref name="cluster"/>.
    /// Its <see cref="OrleansSandboxCluster.Engine"/> keeps each run's log in that database too (<see cref="OrleansRunOptions.SharedLog"/>).
    /// </summary>
    /// <param name="cluster">The database, <c>postgres://user:password@host:port/database</c>.</param>
    /// <param name="loggerFactory">Receives log messages; null logs nothing.</param>
    /// <param name="cancellationToken">Cancels the connection attempt.</param>
    /// <returns>The connected cluster; dispose it to disconnect.</returns>
    public static async Task<OrleansSandboxCluster> ConnectAsync(string cluster, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        var database = PostgresCluster.Parse(cluster);
        var client = await StartClientAsync(orleans => orleans.UseAdoNetClustering(o => (o.Invariant, o.ConnectionString) = (PostgresCluster.Invariant, database))
            .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (ClusterId, ClusterId)), loggerFactory, cancellationToken).ConfigureAwait(false);
        // The run's log goes to the cluster's database too, so a coordinator on any machine can resume it.
        return new OrleansSandboxCluster([client], client.Services.GetRequiredService<IClusterClient>(), 0, new OrleansRunOptions { SharedLog = cluster }, loggerFactory);
    }

    private static async Task<IHost> StartClientAsync(Action<IClientBuilder> clustering, ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        Forward(builder.Services, loggerFactory);
        builder.UseOrleansClient(orleans =>
        {
            clustering(orleans);
            orleans.UseStableAlignmentSandbox();
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return host;
    }

    /// <summary>
    /// A silo that dies is declared dead after two missed 2-second probes (Orleans' defaults: three of 5 s), so its
    /// agents move to the other silos within seconds; the coordinator asks again for what was in flight.
    /// </summary>
    private static void FastFailover(IServiceCollection services) =>
        services.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(2);
            o.NumMissedProbesLimit = 2;
        });

    private static void Forward(IServiceCollection services, ILoggerFactory? loggerFactory)
    {
        if (loggerFactory is not null) services.AddSingleton(loggerFactory);
        else services.AddLogging();
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ =>
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            return l;
        }).ToList();
        int[] ports = [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        foreach (var l in listeners) l.Stop();
        return ports;
    }
}

/// <summary>Where a silo listens and how the cluster reaches it.</summary>
/// <param name="SiloPort">The silo-to-silo port (Orleans' default 11111).</param>
/// <param name="GatewayPort">The port clients connect to (Orleans' default 30000).</param>
/// <param name="AdvertisedAddress">The address other silos and clients use; null is loopback (one machine). On Kubernetes, the pod IP.</param>
public sealed record OrleansSiloEndpoint(int SiloPort = 11111, int GatewayPort = 30000, string? AdvertisedAddress = null)
{
    internal IPAddress Address => AdvertisedAddress is null ? IPAddress.Loopback
        : IPAddress.TryParse(AdvertisedAddress, out var ip) ? ip
        : throw new ArgumentException($"OrleansSiloEndpoint.AdvertisedAddress: '{AdvertisedAddress}' is not an IP address.", nameof(AdvertisedAddress));
}

/// <summary>A running cluster (silos started here, if any) and its client; <see cref="Engine"/> builds sandboxes on it.</summary>
public sealed class OrleansSandboxCluster : IAsyncDisposable
{
    private readonly IReadOnlyList<IHost> _hosts;

    internal OrleansSandboxCluster(IReadOnlyList<IHost> hosts, IClusterClient client, int localSilos, OrleansRunOptions? run, ILoggerFactory? loggerFactory)
    {
        _hosts = hosts;
        Client = client;
        LocalSilos = localSilos;
        Engine = new OrleansSandboxEngine(client, run, loggerFactory);
    }

    /// <summary>The cluster client.</summary>
    public IClusterClient Client { get; }

    /// <summary>Silos this process runs (0 for a client of a remote cluster).</summary>
    public int LocalSilos { get; }

    /// <summary>Builds sandboxes whose agents are grains of this cluster.</summary>
    public ISandboxEngine Engine { get; }

    /// <summary>Stops the client, then the silos started here (last first).</summary>
    /// <returns>A task that completes when everything has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts.Reverse())
        {
            await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
            host.Dispose();
        }
    }
}
