namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>A temporary folder, removed (best effort) when the test disposes it.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder(string prefix = "sa-test-") => Path = Directory.CreateTempSubdirectory(prefix).FullName;

    public string Path { get; }

    /// <summary>The path of <paramref name="name"/> inside the folder (not created).</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open in a child process (e.g. the sandbox kill test) must not fail the test itself.
        }
    }
}
