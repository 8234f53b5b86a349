using System.Text.Json;

namespace StableAlignment.Cli;

internal static class Json
{
    public static JsonSerializerOptions Options { get; } = new() { WriteIndented = true };

    public static async Task<T> ReadAsync<T>(string path, string producedBy, CancellationToken ct)
    {
        await using var stream = File.OpenRead(RunLayout.Require(path, producedBy));
        return await JsonSerializer.DeserializeAsync<T>(stream, Options, ct) ?? throw new UserFacingException($"'{path}' is empty.");
    }
}
