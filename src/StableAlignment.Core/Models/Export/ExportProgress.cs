namespace StableAlignment.Core.Models;

/// <summary>An export's progress: the tensor just written and how many of the export's tensors are done.</summary>
/// <param name="Tensor">The name of the tensor just written (Hugging Face or GGUF naming).</param>
/// <param name="Done">Tensors written so far.</param>
/// <param name="Total">Tensors in the export.</param>
public sealed record ExportProgress(string Tensor, int Done, int Total);
