namespace StableAlignment.Core.Experiment;

/// <summary>
/// The exclusive lock a step holds on its run folder (<see cref="RunFolder.LockFile"/>, opened without sharing, which
/// is an advisory <c>flock</c> on Unix and a share lock on Windows; the system releases it when the process dies, so a
/// killed run leaves no stale lock). On release it removes the folders the step created and left empty, so a step
/// that failed at once leaves no empty output folders behind.
/// </summary>
internal sealed class RunFolderLock : IDisposable
{
    private readonly FileStream _lock;
    private readonly RunFolder _folder;
    private readonly bool _createdRoot;
    private readonly HashSet<string> _before;

    private RunFolderLock(FileStream @lock, RunFolder folder, bool createdRoot, HashSet<string> before)
    {
        _lock = @lock;
        _folder = folder;
        _createdRoot = createdRoot;
        _before = before;
    }

    /// <summary>Takes the lock, creating the run folder when it is missing.</summary>
    /// <exception cref="RunFolderInUseException">Another process holds it.</exception>
    public static RunFolderLock Acquire(RunFolder folder)
    {
        bool createdRoot = !Directory.Exists(folder.Root);
        Directory.CreateDirectory(folder.Root);
        var before = Directories(folder.Root);
        try
        {
            var stream = new FileStream(folder.LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            using (var writer = new StreamWriter(stream, leaveOpen: true)) writer.Write($"{Environment.ProcessId}\n");
            return new RunFolderLock(stream, folder, createdRoot, before);
        }
        catch (IOException e) when (e.HResult is 11 or unchecked((int)0x80070020) or unchecked((int)0x80070021))
        {
            // EWOULDBLOCK on Unix, ERROR_SHARING_VIOLATION / ERROR_LOCK_VIOLATION on Windows.
            throw new RunFolderInUseException(
                $"Another process is running a step in run folder '{folder.Root}' (it holds '{folder.LockFile}'). Wait for it to finish, or use another run folder.", e);
        }
    }

    private static HashSet<string> Directories(string root) =>
        [.. Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories)];

    public void Dispose()
    {
        _lock.Dispose();
        try
        {
            // Deepest first, so a folder emptied by removing its empty children goes too.
            foreach (string dir in Directories(_folder.Root).Where(d => !_before.Contains(d)).OrderByDescending(d => d.Length))
            {
                if (!Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
            }
            if (_createdRoot && Directory.EnumerateFileSystemEntries(_folder.Root).All(e => e == _folder.LockFile))
            {
                File.Delete(_folder.LockFile);
                Directory.Delete(_folder.Root);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Tidying up is a courtesy; it must not hide the step's own outcome.
        }
    }
}
