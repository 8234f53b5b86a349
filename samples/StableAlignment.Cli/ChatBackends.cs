using System.ClientModel;
using System.ClientModel.Primitives;
using LLama;
using LLama.Abstractions;
using LLama.Common;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OpenAI;

namespace StableAlignment.Cli;

/// <summary>
/// Turns a backend spec from the command line into an <see cref="IChatClient"/>:
/// <c>openai:MODEL@BASE_URL</c> (any OpenAI-compatible server: vLLM, llama.cpp server, LM Studio; the key comes from
/// the OPENAI_API_KEY environment variable and is never printed), <c>ollama:MODEL[@URL]</c>, or <c>gguf:PATH</c>
/// (a local model through LLamaSharp on the CPU). The SDKs' own retries and timeouts are off: the experiment's call
/// policy retries, rides out outages and times each attempt out (<c>--retries</c>, <c>--outage-tolerance</c>, <c>--call-timeout</c>).
/// </summary>
internal static class ChatBackends
{
    public const string Help = "openai:MODEL@BASE_URL | ollama:MODEL[@URL] | gguf:PATH";

    public static IChatClient Create(string spec)
    {
        int colon = spec.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0) throw new ArgumentException($"Backend '{spec}' is not of the form {Help}.");
        string kind = spec[..colon], rest = spec[(colon + 1)..];
        switch (kind)
        {
            case "openai":
            {
                var (model, url) = Split(rest, spec, urlRequired: true);
                var client = new OpenAIClient(
                    new ApiKeyCredential(Environment.GetEnvironmentVariable("OPENAI_API_KEY") ?? "none"),
                    new OpenAIClientOptions { Endpoint = new Uri(url!), RetryPolicy = new ClientRetryPolicy(maxRetries: 0), NetworkTimeout = Timeout.InfiniteTimeSpan });
                return client.GetChatClient(model).AsIChatClient();
            }
            case "ollama":
            {
                var (model, url) = Split(rest, spec, urlRequired: false);
                return new OllamaApiClient(new HttpClient { BaseAddress = new Uri(url ?? "http://localhost:11434"), Timeout = Timeout.InfiniteTimeSpan }, model);
            }
            case "gguf":
            {
                if (!File.Exists(rest)) throw new ArgumentException($"GGUF model '{rest}' does not exist.");
                var parameters = new ModelParams(rest) { ContextSize = 4096 };
                var weights = LLamaWeights.LoadFromFile(parameters);
                return new StatelessExecutor(weights, parameters).AsChatClient();
            }
            default:
                throw new ArgumentException($"Unknown backend kind '{kind}' in '{spec}'; use {Help}.");
        }
    }

    private static (string Model, string? Url) Split(string rest, string spec, bool urlRequired)
    {
        int at = rest.IndexOf('@', StringComparison.Ordinal);
        string model = at < 0 ? rest : rest[..at];
        string? url = at < 0 ? null : rest[(at + 1)..];
        if (model.Length == 0) throw new ArgumentException($"Backend '{spec}' names no model.");
        if (urlRequired && string.IsNullOrEmpty(url)) throw new ArgumentException($"Backend '{spec}' needs a base URL: {Help}.");
        if (url is not null && !Uri.TryCreate(url, UriKind.Absolute, out _)) throw new ArgumentException($"'{url}' in '{spec}' is not an absolute URL.");
        return (model, url);
    }
}
