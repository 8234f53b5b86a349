using System.Diagnostics;
using System.Reflection;

namespace StableAlignment.Core.Tests.Cli;

/// <summary>Runs the built CLI (samples/StableAlignment.Cli) as a child process, the way a user runs it.</summary>
internal static class CliProcess
{
    private static string Dll
    {
        get
        {
            string configuration = typeof(CliProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "StableAlignment.Core.sln"))) dir = dir.Parent;
            if (dir is null) throw new InvalidOperationException("The repository root (StableAlignment.Core.sln) was not found above the test assembly.");
            return Path.Combine(dir.FullName, "samples", "StableAlignment.Cli", "bin", configuration, "net10.0", "stable-alignment.dll");
        }
    }

    public static (int ExitCode, string Output) Run(TimeSpan timeout, params string[] args) => Run(timeout, null, args);

    /// <summary>Runs the CLI with extra environment variables (e.g. OPENAI_API_KEY); null values remove a variable.</summary>
    public static (int ExitCode, string Output) Run(TimeSpan timeout, IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["COLUMNS"] = "200";
        start.Environment.Remove("OPENAI_API_KEY");
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"stable-alignment {string.Join(' ', args)} ran past {timeout}.");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
