using System.Globalization;
using StableAlignment.GpuCheck;

// GPU checker: kernels vs a float64 reference (outputs poisoned first), then timings with CUDA events.
// Usage: StableAlignment.GpuCheck [--reps N] [--skip-check] [--skip-timing]
var reps = 20;
var check = true;
var timing = true;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--reps": reps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--skip-check": check = false; break;
        case "--skip-timing": timing = false; break;
        default:
            Console.Error.WriteLine($"Unknown argument {args[i]}. Usage: StableAlignment.GpuCheck [--reps N] [--skip-check] [--skip-timing]");
            return 64;
    }
}
return GpuCheck.Run(reps, check, timing);
