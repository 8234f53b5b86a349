using TorchSharp;

namespace StableAlignment.Core.Models;

/// <summary>Scalars held for the life of the process, for the library's libtorch calls that take one.</summary>
/// <remarks>
/// Why: TorchSharp turns a number into a <see cref="Scalar"/> inline (<c>t * 2.0</c>, <c>t.ne(0)</c>, and the alpha of 1
/// that <c>t + u</c> and <c>t.add_(u)</c> make), and such a temporary is unreachable once its handle is read.
/// <see cref="Scalar"/> frees its native value in a finalizer, so a collection started by another thread during the
/// native call can free the value libtorch is reading ("Expected false to be true ... Scalar.h:140" on a loaded machine).
/// A static field is never collected, and libtorch only reads a scalar, so all threads share these. A value known only
/// at the call is held in a <c>using</c> local instead; the architecture test <c>ScalarLifetimeTests</c> keeps
/// inline conversions out of the library.
/// </remarks>
internal static class HeldScalars
{
    /// <summary>1, an integer so that it also serves integer tensors (it is the alpha of add and sub).</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>0, an integer so that it also compares with integer tensors.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>2, the exponent of a square.</summary>
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary>Negative infinity, what a masked maximum fills.</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();
}
