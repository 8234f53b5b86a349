namespace StableAlignment.Core.Tests.Data;

/// <summary>
/// A fact that needs a file from the shared data folder (<c>../shared/data</c> beside the repository root); it is
/// skipped with a clear message in a fresh clone, where that folder does not exist.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(string fileName)
    {
        FileName = fileName;
        if (SharedDataPath(fileName) is null)
            Skip = $"Shared data file '{fileName}' not found in ../shared/data beside the repository root; this test needs it.";
    }

    public string FileName { get; }

    /// <summary>The file's path, or <see langword="null"/> when the repository root or the file cannot be found.</summary>
    public static string? SharedDataPath(string fileName)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StableAlignment.Core.sln")))
            {
                string path = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", fileName));
                return File.Exists(path) ? path : null;
            }
        }
        return null;
    }
}
