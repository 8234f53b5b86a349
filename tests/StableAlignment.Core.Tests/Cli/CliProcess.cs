using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;

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

    /// <summary>
    /// Runs the CLI and sends it SIGTERM once a line of its output satisfies <paramref name="signalWhen"/>, as a user's
    /// Ctrl+C or a service manager would (SIGINT, unlike SIGTERM, may be ignored by a test host started in the background).
    /// </summary>
    public static (int ExitCode, string Output, bool Signalled) RunAndStop(TimeSpan timeout, Func<string, bool> signalWhen, params string[] args)
    {
        var start = Start(null, args);
        var output = new System.Text.StringBuilder();
        using var process = new Process { StartInfo = start };
        bool signalled = false;
        void OnLine(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            lock (output)
            {
                output.AppendLine(e.Data);
                if (signalled || !signalWhen(e.Data)) return;
                signalled = true;
            }
            // Not thrown: this runs on an event thread, where an exception would end the test host. The test's
            // assertions on the exit code show the line.
            if (Kill(process.Id, SigTerm) != 0)
                lock (output) output.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"(test) kill({process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += OnLine;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"stable-alignment {string.Join(' ', args)} ran past {timeout}.");
        }
        process.WaitForExit(); // drains the output events
        lock (output) return (process.ExitCode, output.ToString(), signalled);
    }

    private const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>Runs the CLI with extra environment variables (e.g. OPENAI_API_KEY); null values remove a variable.</summary>
    public static (int ExitCode, string Output) Run(TimeSpan timeout, IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        using var process = Process.Start(Start(environment, args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"stable-alignment {string.Join(' ', args)} ran past {timeout}.");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static ProcessStartInfo Start(IReadOnlyDictionary<string, string?>? environment, string[] args)
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
        return start;
    }
}
