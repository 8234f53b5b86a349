namespace StableAlignment.Core.Interop.Cuda;

/// <summary>A CUDA driver call failed; <see cref="ErrorName"/> is the driver's name for the error (e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>).</summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception for a failed driver call.</summary>
    /// <param name="errorCode">The CUresult value.</param>
    /// <param name="errorName">The driver's name of the error.</param>
    /// <param name="description">The driver's description of the error.</param>
    /// <param name="call">The driver function that failed.</param>
    public CudaException(int errorCode, string errorName, string description, string call)
        : base($"{call} failed with {errorName} ({errorCode}){(description.Length > 0 ? ": " + description : "")}.")
    {
        ErrorCode = errorCode;
        ErrorName = errorName;
        Call = call;
    }

    /// <summary>Creates the exception with a message only.</summary>
    public CudaException() : this(-1, "CUDA_ERROR_UNKNOWN", "", "CUDA") { }

    /// <summary>Creates the exception with a message only.</summary>
    /// <param name="message">The message.</param>
    public CudaException(string message) : base(message) { ErrorName = "CUDA_ERROR_UNKNOWN"; Call = "CUDA"; ErrorCode = -1; }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public CudaException(string message, Exception innerException) : base(message, innerException) { ErrorName = "CUDA_ERROR_UNKNOWN"; Call = "CUDA"; ErrorCode = -1; }

    /// <summary>The CUresult value.</summary>
    public int ErrorCode { get; }

    /// <summary>The driver's name for the error, e.g. <c>CUDA_ERROR_INVALID_VALUE</c>.</summary>
    public string ErrorName { get; }

    /// <summary>The driver function that failed.</summary>
    public string Call { get; }
}
