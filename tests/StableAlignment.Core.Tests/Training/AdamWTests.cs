using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

/// <summary>The library's <see cref="Core.Training.AdamW"/> against TorchSharp's own AdamW, which it replaces.</summary>
public sealed class AdamWTests
{
    private sealed record Settings(double LearningRate, double Beta1, double Beta2, double Epsilon, double WeightDecay, int Steps, int Seed)
    {
        public override string ToString() => $"lr {LearningRate} betas ({Beta1}, {Beta2}) eps {Epsilon} wd {WeightDecay} steps {Steps} seed {Seed}";
    }

    private static readonly Gen<Settings> SettingsGen =
        from lr in Gen.Elements(1e-4, 1e-3, 3e-2)
        from beta1 in Gen.Elements(0.0, 0.8, 0.9)
        from beta2 in Gen.Elements(0.95, 0.999)
        from eps in Gen.Elements(1e-8, 1e-3)
        from wd in Gen.Elements(0.0, 0.01, 0.1)
        from steps in Gen.Choose(1, 6)
        from seed in Gen.Choose(0, 10_000)
        select new Settings(lr, beta1, beta2, eps, wd, steps, seed);

    /// <summary>Two parameter sets of odd shapes, equal in value, and the gradients of each step (one parameter gets none
    /// at odd steps, as a frozen or unused one would).</summary>
    private static (Parameter[] Ours, Parameter[] Theirs, Tensor[][] Grads) Problem(Settings s)
    {
        var generator = new Generator((ulong)s.Seed);
        long[][] shapes = [[7, 3], [5], [2, 3, 4]];
        var initial = shapes.Select(shape => randn(shape, generator: generator)).ToArray();
        var grads = Enumerable.Range(0, s.Steps).Select(step => shapes.Select((shape, i) => i == 1 && step % 2 == 1 ? null! : randn(shape, generator: generator) * 3).ToArray()).ToArray();
        return ([.. initial.Select(t => new Parameter(t.clone()))], [.. initial.Select(t => new Parameter(t.clone()))], grads);
    }

    private static void Step(OptimizerHelper optimizer, Parameter[] parameters, Tensor[] grads)
    {
        optimizer.zero_grad();
        using (no_grad())
            for (int i = 0; i < parameters.Length; i++)
                if (grads[i] is not null) parameters[i].grad = grads[i].clone();
        optimizer.step();
    }

    private static bool BitEqual(Parameter[] a, Parameter[] b) => a.Zip(b).All(p => p.First.equal(p.Second).all().item<bool>());

    [FsCheck.Xunit.Property(MaxTest = 40)]
    public Property Its_steps_equal_TorchSharps_AdamW_to_the_last_bit() =>
        Prop.ForAll(SettingsGen.ToArbitrary(), s =>
        {
            using var scope = NewDisposeScope();
            var (ours, theirs, grads) = Problem(s);
            using var pinned = new Core.Training.AdamW(ours, s.LearningRate, s.Beta1, s.Beta2, s.Epsilon, s.WeightDecay);
            using var reference = optim.AdamW(theirs, s.LearningRate, s.Beta1, s.Beta2, s.Epsilon, s.WeightDecay);
            foreach (var stepGrads in grads)
            {
                Step(pinned, ours, stepGrads);
                Step(reference, theirs, stepGrads);
            }
            return (BitEqual(ours, theirs) && !BitEqual(ours, Problem(s).Ours)).Label(s.ToString());
        });

    [Fact]
    public void Its_optimizer_file_resumes_in_TorchSharps_AdamW_and_the_steps_stay_equal()
    {
        using var scope = NewDisposeScope();
        var s = new Settings(1e-2, 0.9, 0.999, 1e-8, 0.01, 4, 17);
        var (ours, theirs, grads) = Problem(s);
        var file = Path.Combine(Path.GetTempPath(), $"adamw-{Guid.NewGuid():N}.bin");
        try
        {
            using var pinned = new Core.Training.AdamW(ours, s.LearningRate, s.Beta1, s.Beta2, s.Epsilon, s.WeightDecay);
            using var reference = optim.AdamW(theirs, s.LearningRate, s.Beta1, s.Beta2, s.Epsilon, s.WeightDecay);
            Step(pinned, ours, grads[0]);
            Step(reference, theirs, grads[0]);
            pinned.save_state_dict(file);

            // The file names the type AdamW, so TorchSharp's optimiser loads it, and the saved moments drive it as they do ours.
            using var resumed = optim.AdamW(ours, s.LearningRate, s.Beta1, s.Beta2, s.Epsilon, s.WeightDecay);
            resumed.load_state_dict(file);
            foreach (var stepGrads in grads.Skip(1))
            {
                Step(resumed, ours, stepGrads);
                Step(reference, theirs, stepGrads);
            }
            Assert.True(BitEqual(ours, theirs), "the optimiser resumed from the library AdamW's file diverged from the one that never stopped");
        }
        finally
        {
            File.Delete(file);
        }
    }
}
