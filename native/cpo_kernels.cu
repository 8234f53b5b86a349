// Kernels of the batched contrastive preference (CPO) loss of Stable Alignment.
//
// Three launches per training step; the logits are read twice and the gradient written once:
//   cpo_forward_*   one block per (response, token) row: online log-sum-exp over the vocabulary,
//                   stores lse and the token NLL (one float each per token: O(N*T) extra memory);
//   cpo_group       one block: per-response NLL, per-group best set, margins, hinge reduction,
//                   loss, ranking accuracy and each response's coefficient d(loss)/d(NLL_n);
//   cpo_backward_*  one block per row: grad = scale_n * (softmax - onehot(target)), softmax from lse.
// Rows are strided over the grid, the vocabulary over the block, so no size is hard-coded and
// shared memory stays a few hundred bytes whatever V is.
//
// Built twice from this one file: to PTX by clang-14 and to a CPU library by g++ (see cpo_intrinsics.h).
#include "cpo_intrinsics.h"

typedef unsigned short cpo_bf16;
typedef long long cpo_i64;

#define CPO_LOG2E 1.4426950408889634f
#define CPO_LN2 0.6931471805599453f
#define CPO_NEG_INF (-__builtin_huge_valf())

// 16-byte vector: the body of an aligned row is read and written in these.
struct alignas(16) cpo_vec { unsigned int w[4]; };

template <typename T> struct cpo_elem;

template <> struct cpo_elem<float> {
  static constexpr int per_vec = 4;
  static CPO_DEVICE float load(const float* p) { return *p; }
  static CPO_DEVICE void store(float* p, float v) { *p = v; }
  static CPO_DEVICE float unpack(const cpo_vec& v, int k) { return __builtin_bit_cast(float, v.w[k]); }
  static CPO_DEVICE void pack(cpo_vec& v, int k, float x) { v.w[k] = __builtin_bit_cast(unsigned int, x); }
};

template <> struct cpo_elem<cpo_bf16> {
  static constexpr int per_vec = 8;
  static CPO_DEVICE float widen(unsigned int bits) { return __builtin_bit_cast(float, bits << 16); }
  // Round to nearest even, NaN kept quiet.
  static CPO_DEVICE unsigned int narrow(float x) {
    unsigned int u = __builtin_bit_cast(unsigned int, x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  }
  static CPO_DEVICE float load(const cpo_bf16* p) { return widen(*p); }
  static CPO_DEVICE void store(cpo_bf16* p, float v) { *p = static_cast<cpo_bf16>(narrow(v)); }
  static CPO_DEVICE float unpack(const cpo_vec& v, int k) { return widen((v.w[k >> 1] >> ((k & 1) * 16)) & 0xffffu); }
  static CPO_DEVICE void pack(cpo_vec& v, int k, float x) {
    const unsigned int shift = (k & 1) * 16;
    v.w[k >> 1] = (v.w[k >> 1] & ~(0xffffu << shift)) | (narrow(x) << shift);
  }
};

// exp(x) through the ex2 instruction (no libm on the device).
CPO_DEVICE float cpo_exp(float x) { return cpo_ex2(x * CPO_LOG2E); }

// Running (max m, sum s = sum_k exp(x_k - m)). m stays in natural units so that lse = m + ln(s) is exact
// when one logit dominates (a vocabulary of one gives an NLL of exactly 0).
CPO_DEVICE void cpo_lse_merge(float& m, float& s, float m2, float s2) {
  const float mm = __builtin_fmaxf(m, m2);
  if (mm == CPO_NEG_INF) return; // both empty
  s = s * cpo_exp(m - mm) + s2 * cpo_exp(m2 - mm);
  m = mm;
}

// Shared memory, at file scope so that it has internal linkage in the PTX (a static inside an inline
// function would become a .weak .shared symbol). A few hundred bytes whatever the vocabulary size.
static __shared__ float cpo_warp_max[CPO_MAX_WARPS];
static __shared__ float cpo_warp_sum[CPO_MAX_WARPS];
static __shared__ double cpo_block_values[1024];
static __shared__ int cpo_block_counts[1024];

// Block-wide merge of every thread's (m, s); every thread gets the result. All threads must call it.
CPO_DEVICE void cpo_block_lse(float& m, float& s) {
  float* wm = cpo_warp_max;
  float* ws = cpo_warp_sum;
  for (int off = CPO_WARP_SIZE / 2; off > 0; off >>= 1) {
    const float m2 = cpo_shfl_xor(m, off);
    const float s2 = cpo_shfl_xor(s, off);
    cpo_lse_merge(m, s, m2, s2);
  }
  const unsigned lane = threadIdx.x % CPO_WARP_SIZE, warp = threadIdx.x / CPO_WARP_SIZE;
  const unsigned warps = (blockDim.x + CPO_WARP_SIZE - 1) / CPO_WARP_SIZE;
  if (lane == 0) { wm[warp] = m; ws[warp] = s; }
  cpo_sync();
  m = lane < warps ? wm[lane] : CPO_NEG_INF;
  s = lane < warps ? ws[lane] : 0.0f;
  for (int off = CPO_WARP_SIZE / 2; off > 0; off >>= 1) {
    const float m2 = cpo_shfl_xor(m, off);
    const float s2 = cpo_shfl_xor(s, off);
    cpo_lse_merge(m, s, m2, s2);
  }
  cpo_sync(); // everyone has read wm/ws before the next row overwrites them
}

// Whether a token takes part in the loss: the explicit mask when given, else target != ignore index.
CPO_DEVICE bool cpo_active(const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex, cpo_i64 row) {
  return mask ? mask[row] != 0 : targets[row] != ignoreIndex;
}

CPO_DEVICE bool cpo_row_aligned(const void* a, const void* b) {
  return ((reinterpret_cast<unsigned long long>(a) | reinterpret_cast<unsigned long long>(b)) & 15u) == 0;
}

template <typename T>
CPO_DEVICE void cpo_forward(const T* logits, const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex,
                            cpo_i64 rows, int vocab, float* lse, float* tokenNll, int* badRow) {
  typedef cpo_elem<T> E;
  for (cpo_i64 row = blockIdx.x; row < rows; row += gridDim.x) {
    const cpo_i64 target = targets[row];
    if (!cpo_active(targets, mask, ignoreIndex, row)) { // uniform across the block
      if (threadIdx.x == 0) { lse[row] = 0.0f; tokenNll[row] = 0.0f; }
      continue;
    }
    if (target < 0 || target >= vocab) {
      if (threadIdx.x == 0) { lse[row] = 0.0f; tokenNll[row] = __builtin_nanf(""); cpo_report(badRow, static_cast<int>(row) + 1); }
      continue;
    }
    const T* x = logits + row * vocab;
    float m = CPO_NEG_INF, s = 0.0f;
    int scalarFrom = 0;
    if (cpo_row_aligned(x, x)) {
      const int vecs = vocab / E::per_vec;
      const cpo_vec* xv = reinterpret_cast<const cpo_vec*>(x);
      CPO_UNROLL
      for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
        const cpo_vec v = xv[i];
        float y[E::per_vec];
        float cmax = CPO_NEG_INF;
        for (int k = 0; k < E::per_vec; ++k) { y[k] = E::unpack(v, k); cmax = __builtin_fmaxf(cmax, y[k]); }
        if (cmax == CPO_NEG_INF) continue;
        if (cmax > m) { s *= cpo_exp(m - cmax); m = cmax; } // one rescale per vector, not per element
        for (int k = 0; k < E::per_vec; ++k) s += cpo_exp(y[k] - m);
      }
      scalarFrom = vecs * E::per_vec;
    }
    for (int i = scalarFrom + threadIdx.x; i < vocab; i += blockDim.x) {
      const float y = E::load(x + i);
      if (y == CPO_NEG_INF) continue;
      if (y > m) { s = s * cpo_exp(m - y) + 1.0f; m = y; } else s += cpo_exp(y - m);
    }
    cpo_block_lse(m, s);
    if (threadIdx.x == 0) {
      const float l = m + cpo_lg2(s) * CPO_LN2;
      lse[row] = l;
      tokenNll[row] = l - E::load(x + target);
    }
  }
}

template <typename T>
CPO_DEVICE void cpo_backward(const T* logits, const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex,
                             cpo_i64 rows, int tokens, int vocab, const float* lse, const float* coeff, const float* norm,
                             const float* lossGrad, const float* nllGrad, T* grad) {
  typedef cpo_elem<T> E;
  const float upstream = lossGrad ? *lossGrad : 1.0f;
  for (cpo_i64 row = blockIdx.x; row < rows; row += gridDim.x) {
    const cpo_i64 n = row / tokens;
    const cpo_i64 target = targets[row];
    const T* x = logits + row * vocab;
    T* g = grad + row * vocab;
    const bool active = cpo_active(targets, mask, ignoreIndex, row) && target >= 0 && target < vocab;
    // Chain rule through NLL_n: d(out)/d(NLL_n) from the loss and, when given, from NLL_n itself.
    const float scale = active ? (upstream * coeff[n] + (nllGrad ? nllGrad[n] : 0.0f)) * norm[n] : 0.0f;
    const float l = active ? lse[row] : 0.0f;
    int scalarFrom = 0;
    if (cpo_row_aligned(x, g)) {
      const int vecs = vocab / E::per_vec;
      const cpo_vec* xv = reinterpret_cast<const cpo_vec*>(x);
      cpo_vec* gv = reinterpret_cast<cpo_vec*>(g);
      CPO_UNROLL
      for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
        cpo_vec out = {};
        if (active) {
          const cpo_vec v = xv[i];
          for (int k = 0; k < E::per_vec; ++k) {
            const float p = cpo_exp(E::unpack(v, k) - l);
            const bool hit = static_cast<cpo_i64>(i) * E::per_vec + k == target;
            E::pack(out, k, scale * (hit ? p - 1.0f : p));
          }
        }
        gv[i] = out;
      }
      scalarFrom = vecs * E::per_vec;
    }
    for (int i = scalarFrom + threadIdx.x; i < vocab; i += blockDim.x) {
      float v = 0.0f;
      if (active) {
        const float p = cpo_exp(E::load(x + i) - l);
        v = scale * (i == target ? p - 1.0f : p);
      }
      E::store(g + i, v);
    }
  }
}

// Block-wide sum of a double and an int; the result is valid in every thread. All threads must call it.
CPO_DEVICE void cpo_block_sum(double& v, int& c) {
  double* sv = cpo_block_values;
  int* sc = cpo_block_counts;
  sv[threadIdx.x] = v;
  sc[threadIdx.x] = c;
  cpo_sync();
  for (unsigned half = 512; half > 0; half >>= 1) {
    if (threadIdx.x < half && threadIdx.x + half < blockDim.x) {
      sv[threadIdx.x] += sv[threadIdx.x + half];
      sc[threadIdx.x] += sc[threadIdx.x + half];
    }
    cpo_sync();
  }
  v = sv[0];
  c = sc[0];
  cpo_sync();
}

enum { CPO_HINGE_OF_MEAN = 0, CPO_MEAN_OF_HINGES = 1, CPO_HINGE_OF_MAX = 2 };
enum { CPO_TOKEN_MEAN = 0, CPO_SUM = 1 };

// Options of the group reduction, passed by value (mirrors ContrastivePreferenceOptions).
struct cpo_options {
  double ratingScale;
  double margin;
  double rankingWeight;
  int reduction;
  int lengthNormalization;
  int sftOnly;
  int reserved;
};

// One block. Outputs: nll/len/norm/coeff per response, sft/rank/bestLowest (-1 = none, 0, 1) per group, loss[0].
extern "C" __global__ void cpo_group(const float* tokenNll, const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex,
                                     const cpo_i64* groups, const double* ratings, int responses, int tokens, int groupCount,
                                     cpo_options o, float* nll, int* len, float* norm, float* coeff, float* sft, float* rank,
                                     int* bestLowest, float* loss) {
  // Per-response NLL, reduced in double so long rows lose nothing.
  for (int n = 0; n < responses; ++n) {
    double sum = 0.0;
    int count = 0;
    for (int t = threadIdx.x; t < tokens; t += blockDim.x) {
      const cpo_i64 row = static_cast<cpo_i64>(n) * tokens + t;
      if (cpo_active(targets, mask, ignoreIndex, row)) { sum += tokenNll[row]; ++count; }
    }
    cpo_block_sum(sum, count);
    if (threadIdx.x == 0) {
      len[n] = count;
      const bool mean = o.lengthNormalization == CPO_TOKEN_MEAN;
      nll[n] = static_cast<float>(mean ? sum / count : sum);
      norm[n] = mean ? 1.0f / static_cast<float>(count) : 1.0f;
    }
  }
  cpo_sync(); // nll[] visible to the whole block

  const double invG = 1.0 / groupCount;
  const double w = o.sftOnly ? 0.0 : o.rankingWeight;
  double lossPart = 0.0;
  int unused = 0;
  for (int g = threadIdx.x; g < groupCount; g += blockDim.x) {
    double best = -__builtin_huge_val();
    for (int n = 0; n < responses; ++n)
      if (groups[n] == g && ratings[n] > best) best = ratings[n];
    int nb = 0, no = 0;
    double sftSum = 0.0, minBest = __builtin_huge_val(), minOther = __builtin_huge_val();
    for (int n = 0; n < responses; ++n) {
      if (groups[n] != g) continue;
      const double v = nll[n];
      if (ratings[n] == best) { ++nb; sftSum += v; minBest = v < minBest ? v : minBest; }
      else { ++no; minOther = v < minOther ? v : minOther; }
    }
    const double s = sftSum / nb;
    // Margins d_i = SFT - NLL_i + M (r_best - r_i) / scale over the non-best responses.
    double dSum = 0.0, hingeSum = 0.0, dMax = -__builtin_huge_val();
    int positive = 0, argMax = -1;
    for (int n = 0; n < responses; ++n) {
      if (groups[n] != g || ratings[n] == best) continue;
      const double d = s - nll[n] + o.margin * (best - ratings[n]) / o.ratingScale;
      dSum += d;
      if (d > 0.0) { hingeSum += d; ++positive; }
      if (d > dMax) { dMax = d; argMax = n; } // first index in batch order wins ties
    }
    double r = 0.0, dRankdSft = 0.0;
    if (no > 0) {
      if (o.reduction == CPO_HINGE_OF_MEAN) { const double mean = dSum / no; if (mean > 0.0) { r = mean; dRankdSft = 1.0; } }
      else if (o.reduction == CPO_MEAN_OF_HINGES) { r = hingeSum / no; dRankdSft = static_cast<double>(positive) / no; }
      else if (dMax > 0.0) { r = dMax; dRankdSft = 1.0; }
    }
    for (int n = 0; n < responses; ++n) {
      if (groups[n] != g) continue;
      double c;
      if (ratings[n] == best) c = (1.0 + w * dRankdSft) / nb;
      else if (no == 0) c = 0.0;
      else {
        const double d = s - nll[n] + o.margin * (best - ratings[n]) / o.ratingScale;
        double dRank = 0.0;
        if (o.reduction == CPO_HINGE_OF_MEAN) dRank = dRankdSft > 0.0 ? -1.0 / no : 0.0;
        else if (o.reduction == CPO_MEAN_OF_HINGES) dRank = d > 0.0 ? -1.0 / no : 0.0;
        else dRank = (dMax > 0.0 && n == argMax) ? -1.0 : 0.0;
        c = w * dRank;
      }
      coeff[n] = static_cast<float>(c * invG);
    }
    sft[g] = static_cast<float>(s);
    rank[g] = static_cast<float>(r);
    bestLowest[g] = no == 0 ? -1 : (minBest < minOther ? 1 : 0);
    lossPart += s + w * r;
  }
  cpo_block_sum(lossPart, unused);
  if (threadIdx.x == 0) loss[0] = static_cast<float>(lossPart * invG);
}

extern "C" __global__ void cpo_forward_f32(const float* logits, const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex,
                                           cpo_i64 rows, int vocab, float* lse, float* tokenNll, int* badRow) {
  cpo_forward(logits, targets, mask, ignoreIndex, rows, vocab, lse, tokenNll, badRow);
}
extern "C" __global__ void cpo_forward_bf16(const cpo_bf16* logits, const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex,
                                            cpo_i64 rows, int vocab, float* lse, float* tokenNll, int* badRow) {
  cpo_forward(logits, targets, mask, ignoreIndex, rows, vocab, lse, tokenNll, badRow);
}
extern "C" __global__ void cpo_backward_f32(const float* logits, const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex,
                                            cpo_i64 rows, int tokens, int vocab, const float* lse, const float* coeff, const float* norm,
                                            const float* lossGrad, const float* nllGrad, float* grad) {
  cpo_backward(logits, targets, mask, ignoreIndex, rows, tokens, vocab, lse, coeff, norm, lossGrad, nllGrad, grad);
}
extern "C" __global__ void cpo_backward_bf16(const cpo_bf16* logits, const cpo_i64* targets, const unsigned char* mask, cpo_i64 ignoreIndex,
                                             cpo_i64 rows, int tokens, int vocab, const float* lse, const float* coeff, const float* norm,
                                             const float* lossGrad, const float* nllGrad, cpo_bf16* grad) {
  cpo_backward(logits, targets, mask, ignoreIndex, rows, tokens, vocab, lse, coeff, norm, lossGrad, nllGrad, grad);
}
