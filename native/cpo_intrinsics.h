// Device intrinsics used by cpo_kernels.cu, behind one small interface with two implementations:
//  - NVPTX (clang-14 -x cuda --cuda-device-only, no CUDA SDK): the real builtins;
//  - CPU emulation (g++): a launch runs blocks one after another, a block's threads run as real
//    threads, __syncthreads is a barrier and warp shuffles exchange values through a per-block buffer.
// The kernels only use what is declared here, so the same source is tested on the CPU in CI.
#pragma once

#define CPO_WARP_SIZE 32
#define CPO_MAX_WARPS 32 // blockDim.x <= 1024

#if defined(__CUDA__) && defined(__CUDA_ARCH__)
// ---------------------------------------------------------------- NVPTX (clang-14)
#include <__clang_cuda_builtin_vars.h>
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define CPO_DEVICE __device__ __attribute__((always_inline)) inline
// More loads in flight per thread on the long vocabulary loops.
#define CPO_UNROLL _Pragma("unroll 4")

CPO_DEVICE float cpo_shfl_xor(float v, int laneMask) { return __nvvm_shfl_sync_bfly_f32(0xffffffffu, v, laneMask, 0x1f); }
CPO_DEVICE float cpo_ex2(float x) { return __nvvm_ex2_approx_f(x); }
CPO_DEVICE float cpo_lg2(float x) { return __nvvm_lg2_approx_f(x); }
CPO_DEVICE void cpo_sync() { __syncthreads(); }
// Benign race: any failing row number is a correct report; the host only checks for non-zero.
CPO_DEVICE void cpo_report(int* flag, int value) { *(volatile int*)flag = value; }

#elif !defined(__CUDA__)
// ---------------------------------------------------------------- CPU emulation (g++)
#include <atomic>
#include <barrier>
#include <cmath>
#include <vector>

struct cpo_dim3 { unsigned x = 0, y = 0, z = 0; };

namespace cpo_emu {
// State shared by the threads of the block being run: the barrier and the shuffle exchange buffer.
struct BlockState {
  explicit BlockState(unsigned threads) : barrier(threads), exchange(threads) {}
  std::barrier<> barrier;
  std::vector<float> exchange;
};
inline thread_local BlockState* block = nullptr;
} // namespace cpo_emu

inline thread_local cpo_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
// Shared memory is declared at file scope (static __shared__), so on the CPU it is an ordinary static
// seen by all emulated threads; blocks run one after another and launches are serialised, so this is
// exactly one block's shared memory.
#define __shared__
#define CPO_DEVICE inline
#define CPO_UNROLL

inline void cpo_sync() { cpo_emu::block->barrier.arrive_and_wait(); }

// Every thread of the block takes part (as the kernels guarantee), so a block barrier stands in for the warp's.
inline float cpo_shfl_xor(float v, int laneMask) {
  auto& b = *cpo_emu::block;
  const unsigned self = threadIdx.x;
  b.exchange[self] = v;
  b.barrier.arrive_and_wait();
  const float other = b.exchange[self ^ static_cast<unsigned>(laneMask)];
  b.barrier.arrive_and_wait();
  return other;
}
inline float cpo_ex2(float x) { return std::exp2(x); }
inline float cpo_lg2(float x) { return std::log2(x); }
inline void cpo_report(int* flag, int value) { std::atomic_ref<int>(*flag).store(value, std::memory_order_relaxed); }
#endif
