namespace StableAlignment.Core.Data;

// Kept apart from the tensors so that TorchSharp-free builds (the GPU checker) share the one definition.
public sealed partial class PreferenceBatch
{
    /// <summary>
    /// The target id at every position excluded from the loss (prompt tokens and padding): negative, so it can never be
    /// a token id. It is the default of the loss's <c>ContrastivePreferenceOptions.IgnoreIndex</c>.
    /// </summary>
    public const long IgnoreIndex = -100;
}
