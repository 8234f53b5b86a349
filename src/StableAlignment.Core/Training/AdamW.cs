using StableAlignment.Core.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// TorchSharp's AdamW with the same update, state and optimizer file, except that every scalar it hands to libtorch is
/// held in a local until the call that reads it returns.
/// </summary>
/// <remarks>
/// The class keeps TorchSharp's name because the optimizer file records it: checkpoints written before this class
/// existed resume, and a file written here loads into TorchSharp's own AdamW.
/// <para>Why: TorchSharp's own step converts doubles to <see cref="Scalar"/>s inline (<c>exp_avg_sq.sqrt() / Math.Sqrt(...)</c>).
/// Such a temporary is unreachable once its handle is read, and <see cref="Scalar"/> frees its native value in a
/// finalizer, so a collection started by another thread during the native call can free the value libtorch is reading.
/// On a loaded 2-core machine the test suite failed that way ("Expected false to be true ... toDouble at
/// Scalar.h:140", from <c>div_Scalar</c> inside <c>AdamW.step</c>).</para>
/// </remarks>
internal sealed class AdamW : TorchSharp.Modules.AdamW
{
    /// <summary>Creates the optimiser over <paramref name="parameters"/>; AMSGrad and maximising are not offered.</summary>
    public AdamW(IEnumerable<Parameter> parameters, double learningRate, double beta1, double beta2, double epsilon, double weightDecay)
        : base(parameters, learningRate, beta1, beta2, epsilon, weightDecay)
    {
    }

    /// <inheritdoc/>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = (Options)group.Options;
        if (options.amsgrad == true || options.maximize == true)
            throw new InvalidOperationException("This AdamW implements neither AMSGrad nor maximising.");
        double lr = options.LearningRate!.Value, beta1 = options.beta1!.Value, beta2 = options.beta2!.Value;
        double weightDecay = options.weight_decay!.Value;
        using var decay = (1 - lr * weightDecay).ToScalar();
        using var keep1 = beta1.ToScalar();
        using var add1 = (1 - beta1).ToScalar();
        using var keep2 = beta2.ToScalar();
        using var add2 = (1 - beta2).ToScalar();
        using var epsilon = options.eps!.Value.ToScalar();
        foreach (var param in group.Parameters)
        {
            var grad = param.grad;
            if (grad is null) continue;
            var state = (State)_state[param.Handle];
            state.step += 1;

            // The order of operations is TorchSharp's, so the two optimisers agree to the last bit. Without weight decay
            // its multiplication by exactly 1 changes no bit, and is a pass over the parameters saved.
            if (weightDecay != 0) param.mul_(decay);
            using var sqrtBiasCorrection2 = Math.Sqrt(1 - Math.Pow(beta2, state.step)).ToScalar();
            using var stepSize = (-lr / (1 - Math.Pow(beta1, state.step))).ToScalar();
            state.exp_avg.mul_(keep1).add_(grad, add1);
            state.exp_avg_sq.mul_(keep2).addcmul_(grad, grad, add2);
            using var denominator = state.exp_avg_sq.sqrt();
            denominator.div_(sqrtBiasCorrection2).add_(epsilon, HeldScalars.One); // add_(Scalar) would make its alpha inline
            param.addcdiv_(state.exp_avg, denominator, stepSize);
        }
    }, closure);
}
