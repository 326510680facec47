// CPU kernels of vaezoo::reparameterize_fwd/_bwd: rows in parallel (at::parallel_for); each task walks its
// rows' elements as one flat range in chunks that span rows (so that short rows cost no per-row loop
// overhead beyond their sums), drawing a whole chunk's normals at once (normals_cpu.h) or reading eps.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "../fast_math.h"
#include "../reparameterize.h"
#include "normals_cpu.h"
#include "reparameterize_cpu.h"

// The kernels are compiled for AVX-512 and AVX2 as well as the baseline ISA, picked at load time (ifunc).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VZ_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VZ_CPU_CLONES
#endif

namespace vaezoo {
namespace {

// Elements per inner pass. Chunks end at multiples of kChunk of the flat [B * D] index whatever rows a task
// holds, so a row's sums are added up in the same pieces and order for every thread count.
constexpr int64_t kChunk = rng::cpu::kMaxElements;
constexpr int64_t kGrain = 16384;  // elements per parallel task
constexpr double kLog2Pi = 1.8378770664093454836;

// The kernels' outputs: at::detail::empty_cpu, what at::empty reaches for a CPU tensor after two dispatcher
// hops (BackendSelect, CPU) that cost a visible part of a small call.
struct CpuEmpty {
  at::Tensor operator()(at::IntArrayRef sizes, const at::TensorOptions& opts) const {
    return at::detail::empty_cpu(sizes, opts);
  }
};

// A fresh seed from torch's default CPU generator, drawn under its mutex (manual_seed and set_rng_state replay).
uint64_t draw_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

int64_t grain_rows(const Problem& p) {
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(p.D, 1));
}

template <typename scalar_t>
struct Inputs {
  const scalar_t* mu;
  const scalar_t* logvar;
  const scalar_t* prior_mu;      // nullptr for N(0, I)
  const scalar_t* prior_logvar;  // nullptr for N(0, I)
  const scalar_t* eps;           // nullptr when drawn
  // exp(logvar / 2) as the forward computed it (backward_kept_draw), or nullptr: the backward computes it
  const at::opmath_type<scalar_t>* std = nullptr;
  rng::cpu::Key key;             // the draw (seed, offset 0)
  const Problem* problem;        // for the position of z's elements in the noise stream

  Inputs(const Problem& p, const at::Tensor& mu_c, const at::Tensor& logvar_c, const at::Tensor& pm_c,
         const at::Tensor& plv_c, const at::Tensor& eps_c, uint64_t seed)
      : mu(mu_c.const_data_ptr<scalar_t>()),
        logvar(logvar_c.const_data_ptr<scalar_t>()),
        prior_mu(p.prior ? pm_c.const_data_ptr<scalar_t>() : nullptr),
        prior_logvar(p.prior ? plv_c.const_data_ptr<scalar_t>() : nullptr),
        eps(p.explicit_eps ? eps_c.const_data_ptr<scalar_t>() : nullptr),
        key(seed, 0),
        problem(&p) {}
};

// Per-task scratch: the chunk's eps (drawn, or given and converted) and per-element values kept across samples.
template <typename acc_t>
struct Scratch {
  alignas(64) float drawn[rng::cpu::kBufferFloats];
  alignas(64) acc_t eps[kChunk];
  alignas(64) acc_t a[kChunk];
  alignas(64) acc_t b[kChunk];
  alignas(64) acc_t c[kChunk];
  alignas(64) acc_t d[kChunk];
  std::vector<acc_t> row_sums;  // a task's per-row sums, grown as needed and kept (no allocation per call)
};

// This thread's scratch, made once: a task reuses it instead of allocating tens of KB per call (tasks on one
// thread run one after another, and a kernel never runs inside another).
template <typename acc_t>
Scratch<acc_t>& thread_scratch() {
  thread_local const std::unique_ptr<Scratch<acc_t>> scratch(new Scratch<acc_t>);  // default-initialized
  return *scratch;
}

// eps of elements [start, start + n) of z (n <= kChunk) in the accumulation type: given, or drawn.
template <typename scalar_t, typename acc_t>
__attribute__((always_inline)) inline const acc_t* chunk_eps(const Inputs<scalar_t>& in, int64_t start, int64_t n,
                                                             Scratch<acc_t>& scratch) {
  if (in.eps != nullptr) {
    if constexpr (std::is_same_v<scalar_t, acc_t>) return in.eps + start;
    for (int64_t i = 0; i < n; ++i) scratch.eps[i] = static_cast<acc_t>(in.eps[start + i]);
    return scratch.eps;
  }
  const Problem& p = *in.problem;  // [start, start + n) lies in one sample k (chunks never span samples)
  const float* drawn = rng::cpu::normals(in.key, p.noise_index(start, start / (p.B * p.D)), n, scratch.drawn);
  if constexpr (std::is_same_v<acc_t, float>) return drawn;
  for (int64_t i = 0; i < n; ++i) scratch.eps[i] = static_cast<acc_t>(drawn[i]);
  return scratch.eps;
}

// The rows of a chunk [i0, i1) are walked as pieces [a0, a1) that lie in one row each, in plain loops in the
// kernels' bodies (a lambda there would be compiled for the baseline ISA only, outside target_clones).
inline int64_t piece_end(int64_t D, int64_t row, int64_t i1) {
  return std::min(i1, (row + 1) * D);
}

// GCC vector types (a template alias cannot carry vector_size, a member typedef can): plain arithmetic on them
// compiles to each clone's own registers (zmm, ymm, xmm).
template <typename T, int N>
struct VecOf {
  typedef T type __attribute__((vector_size(N * sizeof(T))));
};
template <typename T, int N>
using Vec = typename VecOf<T, N>::type;

// The lanes of v summed by halving (a tree), as vector adds.
template <typename T, int N>
__attribute__((always_inline)) inline T tree_sum(const Vec<T, N>& v) {
  if constexpr (N == 2) {
    return v[0] + v[1];
  } else {
    Vec<T, N / 2> lo, hi;
    std::memcpy(&lo, &v, sizeof(lo));
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(lo), sizeof(hi));
    return tree_sum<T, N / 2>(lo + hi);
  }
}

// Sum of x[0 .. n) in 16 lanes, then the lanes as a tree. A plain `omp simd reduction` sums its lanes one
// after another at the end of every row (16 dependent scalar adds through the stack), which cost most of a
// short row's time.
template <typename acc_t>
__attribute__((always_inline)) inline acc_t lane_sum(const acc_t* __restrict__ x, int64_t n) {
  constexpr int kLanes = 16;
  Vec<acc_t, kLanes> lanes = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Vec<acc_t, kLanes> v;
    std::memcpy(&v, x + i, sizeof(v));
    lanes += v;
  }
  acc_t total = tree_sum<acc_t, kLanes>(lanes);
  for (; i < n; ++i) total += x[i];
  return total;
}

// eps of elements [i0, i1) (indexed by the flat element index) copied to kept[i0, i1), where kept is given.
template <typename scalar_t, typename acc_t>
__attribute__((always_inline)) inline void keep_eps(scalar_t* kept, const acc_t* e, int64_t i0, int64_t i1) {
  if (kept == nullptr) return;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    std::memcpy(kept + i0, e + i0, (i1 - i0) * sizeof(acc_t));
  } else {
    for (int64_t i = i0; i < i1; ++i) kept[i] = static_cast<scalar_t>(e[i]);
  }
}

// Rows [b0, b1) of the forward pass. Each chunk is one flat elementwise pass over all its rows (z, and each
// element's terms of the row sums, kept in the scratch), then the row sums of those terms. kept_eps and
// kept_std, where given, receive eps (z's elements) and exp(logvar / 2) (mu's elements) as they are computed.
template <typename scalar_t>
VZ_CPU_CLONES void forward_block(const Problem& p, const Inputs<scalar_t>& in, scalar_t* z, scalar_t* kl,
                                 scalar_t* log_q, scalar_t* kept_eps, at::opmath_type<scalar_t>* kept_std,
                                 int64_t b0, int64_t b1) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t rows = b1 - b0, BD = p.B * p.D;
  Scratch<acc_t>* scratch = &thread_scratch<acc_t>();
  // per row: the KL sum, the sum of logvar, and per sample the sum of eps^2
  std::vector<acc_t>& sums = scratch->row_sums;
  sums.assign((2 + p.K) * rows, acc_t(0));
  acc_t* kl_sum = sums.data();
  acc_t* lv_sum = kl_sum + rows;
  acc_t* sq_sum = lv_sum + rows;  // [K, rows]
  const scalar_t* __restrict__ mu = in.mu;
  const scalar_t* __restrict__ logvar = in.logvar;
  for (int64_t i0 = b0 * p.D; i0 < b1 * p.D;) {
    const int64_t i1 = std::min(b1 * p.D, (i0 / kChunk + 1) * kChunk);
    const acc_t* __restrict__ e = chunk_eps(in, i0, i1 - i0, *scratch) - i0;  // indexed by the flat element index
    keep_eps(kept_eps, e, i0, i1);
    // exp(logvar / 2) of the chunk, for samples 1 .. K-1 (and for backward, where it is kept)
    acc_t* __restrict__ s = kept_std != nullptr ? kept_std : scratch->a - i0;
    acc_t* __restrict__ kl_term = scratch->b - i0;   // each element's term of its row's KL
    acc_t* __restrict__ sq_term = scratch->c - i0;   // eps^2
    if (in.prior_mu != nullptr) {
      for (int64_t a0 = i0, row = i0 / p.D, a1; a0 < i1; a0 = a1, ++row) {
        a1 = piece_end(p.D, row, i1);
        const int64_t shift = p.shared_prior ? row * p.D : 0;  // prior index = i - shift
        const scalar_t* pm = in.prior_mu - shift;
        const scalar_t* plv = in.prior_logvar - shift;
#pragma omp simd
        for (int64_t i = a0; i < a1; ++i) {
          const acc_t mi = mu[i], li = logvar[i], pli = plv[i], ei = e[i];
          const acc_t si = math::exp_acc(acc_t(0.5) * li);
          const acc_t dm = mi - static_cast<acc_t>(pm[i]);
          kl_term[i] = acc_t(0.5) * (pli - li + (si * si + dm * dm) * math::exp_acc(-pli) - acc_t(1));
          sq_term[i] = ei * ei;
          z[i] = static_cast<scalar_t>(mi + si * ei);
          s[i] = si;
        }
      }
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const acc_t mi = mu[i], li = logvar[i], ei = e[i];
        const acc_t si = math::exp_acc(acc_t(0.5) * li);
        kl_term[i] = acc_t(0.5) * (si * si + mi * mi - acc_t(1) - li);
        sq_term[i] = ei * ei;
        z[i] = static_cast<scalar_t>(mi + si * ei);
        s[i] = si;
      }
    }
    const acc_t* __restrict__ lv;  // logvar in the accumulation type
    if constexpr (std::is_same_v<scalar_t, acc_t>) {
      lv = logvar;
    } else {
      acc_t* lv_acc = scratch->d - i0;
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) lv_acc[i] = static_cast<acc_t>(logvar[i]);
      lv = lv_acc;
    }
    for (int64_t a0 = i0, row = i0 / p.D, a1; a0 < i1; a0 = a1, ++row) {
      a1 = piece_end(p.D, row, i1);
      kl_sum[row - b0] += lane_sum(kl_term + a0, a1 - a0);
      lv_sum[row - b0] += lane_sum(lv + a0, a1 - a0);
      sq_sum[row - b0] += lane_sum(sq_term + a0, a1 - a0);
    }
    for (int64_t k = 1; k < p.K; ++k) {
      const int64_t base = k * BD;
      const acc_t* __restrict__ ek = chunk_eps(in, base + i0, i1 - i0, *scratch) - i0;
      keep_eps(kept_eps == nullptr ? nullptr : kept_eps + base, ek, i0, i1);
      scalar_t* __restrict__ zk = z + base;
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const acc_t ei = ek[i];
        zk[i] = static_cast<scalar_t>(static_cast<acc_t>(mu[i]) + s[i] * ei);
        sq_term[i] = ei * ei;
      }
      for (int64_t a0 = i0, row = i0 / p.D, a1; a0 < i1; a0 = a1, ++row) {
        a1 = piece_end(p.D, row, i1);
        sq_sum[k * rows + row - b0] += lane_sum(sq_term + a0, a1 - a0);
      }
    }
    i0 = i1;
  }
  const acc_t log_2pi = static_cast<acc_t>(p.D * kLog2Pi);
  for (int64_t r = 0; r < rows; ++r) {
    kl[b0 + r] = static_cast<scalar_t>(kl_sum[r]);
    for (int64_t k = 0; k < p.K; ++k) {
      log_q[k * p.B + b0 + r] = static_cast<scalar_t>(acc_t(-0.5) * (sq_sum[k * rows + r] + lv_sum[r] + log_2pi));
    }
  }
}

// exp(logvar[i] / 2): read from what the forward kept (kSavedStd), or computed as the forward computes it.
template <bool kSavedStd, typename scalar_t, typename acc_t>
__attribute__((always_inline)) inline acc_t std_at(const acc_t* saved, const scalar_t* logvar, int64_t i) {
  if constexpr (kSavedStd) return saved[i];
  return math::exp_acc(acc_t(0.5) * static_cast<acc_t>(logvar[i]));
}

// Rows [b0, b1) of the backward pass; the prior's gradients go to [B, D] buffers in the accumulation type.
// With one sample the gradients are written at once; with more they are summed over samples in the scratch.
template <typename scalar_t, bool kOneSample, bool kSavedStd>
VZ_CPU_CLONES void backward_block(const Problem& p, const Inputs<scalar_t>& in, const scalar_t* grad_z,
                                  const scalar_t* grad_kl, const scalar_t* grad_log_q, scalar_t* grad_mu,
                                  scalar_t* grad_logvar, at::opmath_type<scalar_t>* grad_pm,
                                  at::opmath_type<scalar_t>* grad_plv, int64_t b0, int64_t b1) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t rows = b1 - b0, BD = p.B * p.D;
  Scratch<acc_t>* scratch = &thread_scratch<acc_t>();
  // d(sum of log_q grads)/d logvar per element: -1/2 * sum_k grad_log_q[k, b] (none without grad_log_q)
  std::vector<acc_t>& lq_term = scratch->row_sums;
  lq_term.assign(rows, acc_t(0));
  for (int64_t r = 0; grad_log_q != nullptr && r < rows; ++r) {
    acc_t g = 0;
    for (int64_t k = 0; k < p.K; ++k) g += static_cast<acc_t>(grad_log_q[k * p.B + b0 + r]);
    lq_term[r] = acc_t(-0.5) * g;
  }
  const scalar_t* __restrict__ mu = in.mu;
  const scalar_t* __restrict__ logvar = in.logvar;
  const acc_t* __restrict__ saved_std = in.std;
  for (int64_t i0 = b0 * p.D; i0 < b1 * p.D;) {
    const int64_t i1 = std::min(b1 * p.D, (i0 / kChunk + 1) * kChunk);
    const acc_t* __restrict__ e = chunk_eps(in, i0, i1 - i0, *scratch) - i0;
    // with several samples: grad_mu, grad_logvar and exp(logvar / 2) of the chunk
    acc_t* __restrict__ gm = scratch->a - i0;
    acc_t* __restrict__ gl = scratch->b - i0;
    acc_t* __restrict__ s = scratch->c - i0;
    for (int64_t a0 = i0, row = i0 / p.D, a1; a0 < i1; a0 = a1, ++row) {
      a1 = piece_end(p.D, row, i1);
      const acc_t gk = grad_kl != nullptr ? static_cast<acc_t>(grad_kl[row]) : acc_t(0), lqt = lq_term[row - b0];
      if (in.prior_mu != nullptr) {
        const int64_t shift = p.shared_prior ? row * p.D : 0;
        const scalar_t* pm = in.prior_mu - shift;
        const scalar_t* plv = in.prior_logvar - shift;
#pragma omp simd
        for (int64_t i = a0; i < a1; ++i) {
          const acc_t si = std_at<kSavedStd>(saved_std, logvar, i);
          const acc_t ipv = math::exp_acc(-static_cast<acc_t>(plv[i]));
          const acc_t dm = static_cast<acc_t>(mu[i]) - static_cast<acc_t>(pm[i]);
          const acc_t var = si * si, g = grad_z[i];
          const acc_t gmi = gk * dm * ipv + g;
          const acc_t gli = gk * acc_t(0.5) * (var * ipv - acc_t(1)) + lqt + acc_t(0.5) * g * si * e[i];
          grad_pm[i] = -gk * dm * ipv;
          grad_plv[i] = gk * acc_t(0.5) * (acc_t(1) - (var + dm * dm) * ipv);
          if constexpr (kOneSample) {
            grad_mu[i] = static_cast<scalar_t>(gmi);
            grad_logvar[i] = static_cast<scalar_t>(gli);
          } else {
            gm[i] = gmi;
            gl[i] = gli;
            s[i] = si;
          }
        }
      } else {
#pragma omp simd
        for (int64_t i = a0; i < a1; ++i) {
          const acc_t si = std_at<kSavedStd>(saved_std, logvar, i);
          const acc_t g = grad_z[i];
          const acc_t gmi = gk * static_cast<acc_t>(mu[i]) + g;
          const acc_t gli = gk * acc_t(0.5) * (si * si - acc_t(1)) + lqt + acc_t(0.5) * g * si * e[i];
          if constexpr (kOneSample) {
            grad_mu[i] = static_cast<scalar_t>(gmi);
            grad_logvar[i] = static_cast<scalar_t>(gli);
          } else {
            gm[i] = gmi;
            gl[i] = gli;
            s[i] = si;
          }
        }
      }
    }
    if constexpr (!kOneSample) {
      for (int64_t k = 1; k < p.K; ++k) {
        const int64_t base = k * BD;
        const acc_t* ek = chunk_eps(in, base + i0, i1 - i0, *scratch) - i0;
        const scalar_t* gzk = grad_z + base;
#pragma omp simd
        for (int64_t i = i0; i < i1; ++i) {
          const acc_t g = gzk[i];
          gm[i] += g;
          gl[i] += acc_t(0.5) * g * s[i] * ek[i];
        }
      }
      for (int64_t i = i0; i < i1; ++i) {
        grad_mu[i] = static_cast<scalar_t>(gm[i]);
        grad_logvar[i] = static_cast<scalar_t>(gl[i]);
      }
    }
    i0 = i1;
  }
}

// The forward kernel over one call. With `keep` (a float32 or float64 call that draws eps), the drawn eps
// (z's shape) and std_dev = exp(logvar / 2) (mu's shape) come out too, written in the same pass.
cpu::KeptForward run_forward(const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
                             const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
                             std::optional<int64_t> samples, int64_t row_start, std::optional<int64_t> row_total,
                             bool keep) {
  const Problem p = make_problem(mu, logvar, prior_mu, prior_logvar, eps, samples.value_or(1), row_start, row_total);
  ForwardOutputs out = allocate_forward(mu, p, samples, CpuEmpty());
  at::Tensor kept_eps, kept_std;
  if (keep) {
    TORCH_INTERNAL_ASSERT(!p.explicit_eps && (mu.scalar_type() == at::kFloat || mu.scalar_type() == at::kDouble));
    kept_eps = CpuEmpty()(out.z.sizes(), mu.options());
    kept_std = CpuEmpty()(mu.sizes(), mu.options());
  }
  const uint64_t seed = p.explicit_eps ? 0 : draw_seed();
  int64_t* state = out.rng.mutable_data_ptr<int64_t>();
  state[0] = static_cast<int64_t>(seed);
  state[1] = 0;
  const at::Tensor mu_c = mu.contiguous(), lv_c = logvar.contiguous();
  const at::Tensor pm_c = contiguous_or_empty(prior_mu), plv_c = contiguous_or_empty(prior_logvar);
  const at::Tensor eps_c = contiguous_or_empty(eps);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaezoo_reparameterize_fwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Inputs<scalar_t> in(p, mu_c, lv_c, pm_c, plv_c, eps_c, seed);
    scalar_t* z = out.z.mutable_data_ptr<scalar_t>();
    scalar_t* kl = out.kl.mutable_data_ptr<scalar_t>();
    scalar_t* log_q = out.log_q.mutable_data_ptr<scalar_t>();
    scalar_t* eps_out = keep ? kept_eps.mutable_data_ptr<scalar_t>() : nullptr;
    acc_t* std_out = keep ? kept_std.mutable_data_ptr<acc_t>() : nullptr;
    at::parallel_for(0, p.B, grain_rows(p), [&](int64_t b0, int64_t b1) {
      forward_block<scalar_t>(p, in, z, kl, log_q, eps_out, std_out, b0, b1);
    });
  });
  return {out.z, out.kl, out.log_q, out.rng, kept_eps, kept_std};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cpu(
    const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
    std::optional<int64_t> samples, int64_t row_start, std::optional<int64_t> row_total) {
  cpu::KeptForward out = run_forward(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total, false);
  return {std::move(out.z), std::move(out.kl), std::move(out.log_q), std::move(out.rng)};
}

// The backward kernel over one call: a drawn eps is regenerated from seed; kept_std, where defined, is
// exp(logvar / 2) as the forward computed it (mu's shape and dtype, float32 or float64), read instead of
// computed again.
BackwardOutputs run_backward(const Problem& p, const at::Tensor& grad_z, const std::optional<at::Tensor>& grad_kl,
                             const std::optional<at::Tensor>& grad_log_q, const at::Tensor& mu,
                             const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
                             const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
                             uint64_t seed, const at::Tensor& kept_std) {
  const BackwardOutputs out = allocate_backward(mu, p, CpuEmpty());
  const at::Tensor mu_c = mu.contiguous(), lv_c = logvar.contiguous();
  const at::Tensor pm_c = contiguous_or_empty(prior_mu), plv_c = contiguous_or_empty(prior_logvar);
  const at::Tensor eps_c = contiguous_or_empty(eps);
  // an absent grad_kl or grad_log_q is read as zeros, without allocating them
  const at::Tensor gz_c = grad_z.contiguous(), gkl_c = contiguous_or_empty(grad_kl);
  const at::Tensor glq_c = contiguous_or_empty(grad_log_q);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaezoo_reparameterize_bwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    Inputs<scalar_t> in(p, mu_c, lv_c, pm_c, plv_c, eps_c, seed);
    if (kept_std.defined()) {
      TORCH_INTERNAL_ASSERT(kept_std.scalar_type() == at::CppTypeToScalarType<acc_t>::value &&
                            kept_std.is_contiguous() && kept_std.numel() == p.B * p.D);
      in.std = kept_std.const_data_ptr<acc_t>();
    }
    const scalar_t* gz = gz_c.const_data_ptr<scalar_t>();
    const scalar_t* gkl = gkl_c.defined() ? gkl_c.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* glq = glq_c.defined() ? glq_c.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gm = out.grad_mu.mutable_data_ptr<scalar_t>();
    scalar_t* glv = out.grad_logvar.mutable_data_ptr<scalar_t>();
    acc_t* gpm = p.prior ? out.grad_prior_mu.mutable_data_ptr<acc_t>() : nullptr;
    acc_t* gplv = p.prior ? out.grad_prior_logvar.mutable_data_ptr<acc_t>() : nullptr;
    at::parallel_for(0, p.B, grain_rows(p), [&](int64_t b0, int64_t b1) {
      if (p.K == 1) {
        if (in.std != nullptr) {
          backward_block<scalar_t, true, true>(p, in, gz, gkl, glq, gm, glv, gpm, gplv, b0, b1);
        } else {
          backward_block<scalar_t, true, false>(p, in, gz, gkl, glq, gm, glv, gpm, gplv, b0, b1);
        }
      } else if (in.std != nullptr) {
        backward_block<scalar_t, false, true>(p, in, gz, gkl, glq, gm, glv, gpm, gplv, b0, b1);
      } else {
        backward_block<scalar_t, false, false>(p, in, gz, gkl, glq, gm, glv, gpm, gplv, b0, b1);
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cpu(
    const at::Tensor& grad_z, const std::optional<at::Tensor>& grad_kl, const std::optional<at::Tensor>& grad_log_q,
    const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps, const at::Tensor& rng,
    int64_t row_start, std::optional<int64_t> row_total) {
  const Problem p =
      make_problem(mu, logvar, prior_mu, prior_logvar, eps, samples_of(grad_z, mu), row_start, row_total);
  const uint64_t seed = static_cast<uint64_t>((rng.is_cpu() ? rng : rng.cpu()).const_data_ptr<int64_t>()[0]);
  const BackwardOutputs out =
      run_backward(p, grad_z, grad_kl, grad_log_q, mu, logvar, prior_mu, prior_logvar, eps, seed, at::Tensor());
  return finish_backward(out, mu, prior_mu, prior_logvar, p);
}

}  // namespace

namespace cpu {

// z's elements at most for which autograd keeps the draw: eps then stays in the L2 cache between the passes.
constexpr int64_t kKeptDrawMax = 1 << 16;

bool plain_cpu(const at::Tensor& t) {
  // the keys the dispatcher would see for t (its own and this thread's), less those that only pass the call on
  const c10::impl::LocalDispatchKeySet tls = c10::impl::tls_local_dispatch_key_set();
  const c10::DispatchKeySet passing = c10::autograd_dispatch_keyset_with_ADInplaceOrView |
                                      c10::autocast_dispatch_keyset | c10::DispatchKeySet(c10::DispatchKey::BackendSelect);
  return ((t.key_set() | tls.included_) - tls.excluded_ - passing) == c10::DispatchKeySet(c10::DispatchKey::CPU);
}

bool keeps_draw(const at::Tensor& mu, std::optional<int64_t> samples) {
  return (mu.scalar_type() == at::kFloat || mu.scalar_type() == at::kDouble) &&
         mu.numel() * samples.value_or(1) <= kKeptDrawMax;
}

KeptForward forward_keeping_draw(const at::Tensor& mu, const at::Tensor& logvar,
                                 const std::optional<at::Tensor>& prior_mu,
                                 const std::optional<at::Tensor>& prior_logvar, std::optional<int64_t> samples,
                                 int64_t row_start, std::optional<int64_t> row_total) {
  return run_forward(mu, logvar, prior_mu, prior_logvar, std::nullopt, samples, row_start, row_total, true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_kept_draw(
    const at::Tensor& grad_z, const std::optional<at::Tensor>& grad_kl, const std::optional<at::Tensor>& grad_log_q,
    const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const at::Tensor& eps, const at::Tensor& std_dev) {
  const std::optional<at::Tensor> given_eps(eps);
  // eps is given: the rows of a noise_shard block (which place a draw) play no part
  const Problem p =
      make_problem(mu, logvar, prior_mu, prior_logvar, given_eps, samples_of(grad_z, mu), 0, std::nullopt);
  const BackwardOutputs out =
      run_backward(p, grad_z, grad_kl, grad_log_q, mu, logvar, prior_mu, prior_logvar, given_eps, 0, std_dev);
  if (!p.prior) return {out.grad_mu, out.grad_logvar, at::Tensor(), at::Tensor()};
  return finish_backward(out, mu, prior_mu, prior_logvar, p);
}

}  // namespace cpu

TORCH_LIBRARY_IMPL(vaezoo, CPU, m) {
  m.impl("reparameterize_fwd", &forward_cpu);
  m.impl("reparameterize_bwd", &backward_cpu);
}

}  // namespace vaezoo
