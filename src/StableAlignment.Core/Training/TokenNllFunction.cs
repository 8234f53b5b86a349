using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// Per-token negative log-likelihood <c>logsumexp(x) - x[target]</c> over rows of a <c>[R, V]</c> logits matrix,
/// as an autograd function. The naive composition (log_softmax, gather) materialises several <c>[R, V]</c>
/// temporaries; here the extra memory is one float per row, and the backward pass writes <c>grad_logits</c>
/// directly as <c>g * (softmax - onehot)</c> from the saved log-sum-exp, into a new tensor or, when the caller
/// allows it, over the logits themselves (Liger-Kernel's trick: the logits are not needed after the loss, and a
/// fresh logits-sized gradient costs more in page faults than the arithmetic).
/// </summary>
internal sealed class TokenNllFunction : torch.autograd.SingleTensorFunction<TokenNllFunction>
{
    private const string SettingsKey = "settings";

    /// <summary>How the rows are computed and where the gradient goes.</summary>
    /// <param name="Rows">The per-row work.</param>
    /// <param name="OverwriteLogits">Write the gradient over the logits' storage instead of a new tensor.</param>
    internal sealed record Settings(ILogitRowLoss Rows, bool OverwriteLogits)
    {
        /// <summary>TorchSharp operations on any device, gradient in a new tensor: for the baselines' response NLLs.</summary>
        public static Settings TorchOps { get; } = new(new TorchLogitRowLoss(), OverwriteLogits: false);
    }

    public override string Name => "StableAlignmentTokenNll";

    /// <summary>Computes the token NLLs of <paramref name="logits"/> <c>[R, V]</c> (contiguous) at <paramref name="targets"/> <c>[R]</c> (valid ids).</summary>
    /// <returns>A <c>[R]</c> tensor in the accumulation type (float64 for float64 logits, float32 otherwise).</returns>
    public static Tensor Apply(Tensor logits, Tensor targets, Settings settings) => apply(logits, targets, settings);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var logits = (Tensor)vars[0];
        var targets = (Tensor)vars[1];
        var settings = (Settings)vars[2];
        long rows = logits.shape[0];
        var accType = AccumulationType(logits.dtype);
        var lse = torch.empty(rows, dtype: accType, device: logits.device);
        var nll = torch.empty(rows, dtype: accType, device: logits.device);
        settings.Rows.Forward(logits, targets, lse, nll);
        ctx.save_for_backward([logits, targets, lse]);
        ctx.save_data(SettingsKey, settings);
        return nll;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor logits = saved[0], targets = saved[1], lse = saved[2];
        var settings = (Settings)ctx.get_data(SettingsKey);
        using var scale = gradOutput.to(lse.dtype).contiguous();
        var grad = settings.OverwriteLogits ? logits : torch.empty_like(logits);
        settings.Rows.Backward(logits, targets, lse, scale, grad);
        if (settings.OverwriteLogits) MarkOverwritten(logits);
        else logits.Dispose(); // when overwritten, the handle is returned as the gradient and must stay alive
        targets.Dispose();
        lse.Dispose();
        return [grad, null!, null!];
    }

    /// <summary>
    /// Bumps the version counter of a tensor whose storage was written through its data pointer, so that any other
    /// autograd node that saved it fails loudly ("modified by an inplace operation") instead of reading the gradient.
    /// </summary>
    internal static void MarkOverwritten(Tensor tensor)
    {
        using var first = tensor.view(-1).narrow(0, 0, 1);
        first.add_(HeldScalars.Zero, HeldScalars.One);
    }

    internal static ScalarType AccumulationType(ScalarType logitsType) =>
        logitsType == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
}
