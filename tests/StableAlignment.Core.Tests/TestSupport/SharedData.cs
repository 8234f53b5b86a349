namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>
/// The shared data folder, <c>../shared/data</c> beside the repository root. A fresh clone has none, so tests that
/// need it use <see cref="SharedDataFactAttribute"/>.
/// </summary>
internal static class SharedData
{
    public static string Directory { get; } = Locate();

    public static string PathOf(string file) => Path.Combine(Directory, file);

    private static string Locate()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "StableAlignment.Core.sln")))
        {
            dir = dir.Parent;
        }
        return dir is null ? "(repository root not found)" : Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data"));
    }
}

/// <summary>
/// A fact that runs only when every named file exists in <see cref="SharedData.Directory"/>, and is skipped with a
/// message naming the missing files otherwise.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(params string[] files)
    {
        Files = files;
        var missing = files.Where(f => !File.Exists(SharedData.PathOf(f))).ToArray();
        if (missing.Length > 0)
        {
            Skip = $"Shared data not found ({string.Join(", ", missing)} under {SharedData.Directory}); this test needs ../shared/data next to the repository.";
        }
    }

    public IReadOnlyList<string> Files { get; }
}
