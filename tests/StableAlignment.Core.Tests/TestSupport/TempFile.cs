namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>Writes fixture text to a temporary file that is deleted on dispose.</summary>
internal sealed class TempFile : IDisposable
{
    public TempFile(string text, string extension)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sa-test-" + Guid.NewGuid().ToString("N") + extension);
        File.WriteAllText(Path, text);
    }

    public string Path { get; }

    public void Dispose() => File.Delete(Path);
}
