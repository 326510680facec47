// CPU kernels of vaezoo::reparameterize_fwd/_bwd: rows in parallel (at::parallel_for), each row in chunks
// whose inner loops the compiler vectorizes; eps comes from the shared Philox stream or is given.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "../fast_math.h"
#include "../philox.h"
#include "../reparameterize.h"

// The row kernels are compiled for AVX-512 and AVX2 as well as the baseline ISA, picked at load time (ifunc).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VZ_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VZ_CPU_CLONES
#endif

namespace vaezoo {
namespace {

constexpr int64_t kChunk = 512;   // elements of a row per inner pass (stack buffers)
constexpr int64_t kGrain = 8192;  // elements per parallel task
constexpr double kLog2Pi = 1.8378770664093454836;

// A fresh seed from torch's default CPU generator, drawn under its mutex (manual_seed and set_rng_state replay).
uint64_t draw_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

// eps for elements [start, start + n) of z (n <= kChunk): given, or regenerated from the seed.
template <typename scalar_t, typename acc_t>
__attribute__((always_inline)) inline void load_eps(const scalar_t* eps, uint64_t seed, int64_t start, int64_t n, acc_t* out) {
  if (eps != nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<acc_t>(eps[start + i]);
    return;
  }
  alignas(64) float block[kChunk + 8];
  const int64_t g0 = start / 4;
  const int64_t groups = (start + n + 3) / 4 - g0;
  for (int64_t g = 0; g < groups; ++g) rng::normal4(seed, 0, static_cast<uint64_t>(g0 + g), block + 4 * g);
  const float* first = block + (start - 4 * g0);
  if constexpr (std::is_same_v<acc_t, float>) {
    std::memcpy(out, first, n * sizeof(float));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<acc_t>(first[i]);
  }
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
  uint64_t seed;

  Inputs(const Problem& p, const at::Tensor& mu_c, const at::Tensor& logvar_c, const at::Tensor& pm_c,
         const at::Tensor& plv_c, const at::Tensor& eps_c, uint64_t seed_)
      : mu(mu_c.const_data_ptr<scalar_t>()),
        logvar(logvar_c.const_data_ptr<scalar_t>()),
        prior_mu(p.prior ? pm_c.const_data_ptr<scalar_t>() : nullptr),
        prior_logvar(p.prior ? plv_c.const_data_ptr<scalar_t>() : nullptr),
        eps(p.explicit_eps ? eps_c.const_data_ptr<scalar_t>() : nullptr),
        seed(seed_) {}
};

// Rows [b0, b1) of the forward pass.
template <typename scalar_t>
VZ_CPU_CLONES void forward_block(const Problem& p, const Inputs<scalar_t>& in, scalar_t* z, scalar_t* kl,
                                 scalar_t* log_q, int64_t b0, int64_t b1) {
  using acc_t = at::opmath_type<scalar_t>;
  alignas(64) acc_t m[kChunk], s[kChunk], e[kChunk];
  std::vector<acc_t> sq(p.K);  // sum of eps^2 per sample
  for (int64_t b = b0; b < b1; ++b) {
    acc_t kl_sum = 0, lv_sum = 0;
    std::fill(sq.begin(), sq.end(), acc_t(0));
    for (int64_t d0 = 0; d0 < p.D; d0 += kChunk) {
      const int64_t n = std::min(kChunk, p.D - d0);
      const scalar_t* mu = in.mu + b * p.D + d0;
      const scalar_t* lv = in.logvar + b * p.D + d0;
      if (in.prior_mu != nullptr) {
        const int64_t prow = (p.shared_prior ? 0 : b * p.D) + d0;
        const scalar_t* pm = in.prior_mu + prow;
        const scalar_t* plv = in.prior_logvar + prow;
#pragma omp simd reduction(+ : kl_sum, lv_sum)
        for (int64_t i = 0; i < n; ++i) {
          const acc_t mi = mu[i], li = lv[i], pli = plv[i];
          const acc_t si = math::exp_acc(acc_t(0.5) * li);
          const acc_t dm = mi - static_cast<acc_t>(pm[i]);
          kl_sum += acc_t(0.5) * (pli - li + (si * si + dm * dm) * math::exp_acc(-pli) - acc_t(1));
          lv_sum += li;
          m[i] = mi;
          s[i] = si;
        }
      } else {
#pragma omp simd reduction(+ : kl_sum, lv_sum)
        for (int64_t i = 0; i < n; ++i) {
          const acc_t mi = mu[i], li = lv[i];
          const acc_t si = math::exp_acc(acc_t(0.5) * li);
          kl_sum += acc_t(0.5) * (si * si + mi * mi - acc_t(1) - li);
          lv_sum += li;
          m[i] = mi;
          s[i] = si;
        }
      }
      for (int64_t k = 0; k < p.K; ++k) {
        const int64_t base = (k * p.B + b) * p.D + d0;
        load_eps(in.eps, in.seed, base, n, e);
        scalar_t* zk = z + base;
        acc_t sq_k = 0;
#pragma omp simd reduction(+ : sq_k)
        for (int64_t i = 0; i < n; ++i) {
          zk[i] = static_cast<scalar_t>(m[i] + s[i] * e[i]);
          sq_k += e[i] * e[i];
        }
        sq[k] += sq_k;
      }
    }
    kl[b] = static_cast<scalar_t>(kl_sum);
    const acc_t constant = lv_sum + static_cast<acc_t>(p.D * kLog2Pi);
    for (int64_t k = 0; k < p.K; ++k) log_q[k * p.B + b] = static_cast<scalar_t>(acc_t(-0.5) * (sq[k] + constant));
  }
}

// Rows [b0, b1) of the backward pass; the prior's gradients go to [B, D] buffers in the accumulation type.
template <typename scalar_t>
VZ_CPU_CLONES void backward_block(const Problem& p, const Inputs<scalar_t>& in, const scalar_t* grad_z,
                                  const scalar_t* grad_kl, const scalar_t* grad_log_q, scalar_t* grad_mu,
                                  scalar_t* grad_logvar, at::opmath_type<scalar_t>* grad_pm,
                                  at::opmath_type<scalar_t>* grad_plv, int64_t b0, int64_t b1) {
  using acc_t = at::opmath_type<scalar_t>;
  alignas(64) acc_t s[kChunk], gm[kChunk], gl[kChunk], e[kChunk];
  for (int64_t b = b0; b < b1; ++b) {
    const acc_t gk = grad_kl[b];
    acc_t glq = 0;
    for (int64_t k = 0; k < p.K; ++k) glq += static_cast<acc_t>(grad_log_q[k * p.B + b]);
    const acc_t lq_term = acc_t(-0.5) * glq;  // d log_q / d logvar = -1/2 per element (total derivative)
    for (int64_t d0 = 0; d0 < p.D; d0 += kChunk) {
      const int64_t n = std::min(kChunk, p.D - d0);
      const int64_t row = b * p.D + d0;
      const scalar_t* mu = in.mu + row;
      const scalar_t* lv = in.logvar + row;
      if (in.prior_mu != nullptr) {
        const int64_t prow = (p.shared_prior ? 0 : b * p.D) + d0;
        const scalar_t* pm = in.prior_mu + prow;
        const scalar_t* plv = in.prior_logvar + prow;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const acc_t li = lv[i];
          const acc_t si = math::exp_acc(acc_t(0.5) * li);
          const acc_t ipv = math::exp_acc(-static_cast<acc_t>(plv[i]));
          const acc_t dm = static_cast<acc_t>(mu[i]) - static_cast<acc_t>(pm[i]);
          const acc_t var = si * si;
          gm[i] = gk * dm * ipv;
          gl[i] = gk * acc_t(0.5) * (var * ipv - acc_t(1)) + lq_term;
          grad_pm[row + i] = -gk * dm * ipv;
          grad_plv[row + i] = gk * acc_t(0.5) * (acc_t(1) - (var + dm * dm) * ipv);
          s[i] = si;
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const acc_t li = lv[i];
          const acc_t si = math::exp_acc(acc_t(0.5) * li);
          gm[i] = gk * static_cast<acc_t>(mu[i]);
          gl[i] = gk * acc_t(0.5) * (si * si - acc_t(1)) + lq_term;
          s[i] = si;
        }
      }
      for (int64_t k = 0; k < p.K; ++k) {
        const int64_t base = (k * p.B + b) * p.D + d0;
        load_eps(in.eps, in.seed, base, n, e);
        const scalar_t* gzk = grad_z + base;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const acc_t g = gzk[i];
          gm[i] += g;
          gl[i] += acc_t(0.5) * g * s[i] * e[i];
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        grad_mu[row + i] = static_cast<scalar_t>(gm[i]);
        grad_logvar[row + i] = static_cast<scalar_t>(gl[i]);
      }
    }
  }
}

at::Tensor contiguous_or_empty(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cpu(
    const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
    std::optional<int64_t> samples) {
  const Problem p = make_problem(mu, logvar, prior_mu, prior_logvar, eps, samples.value_or(1));
  ForwardOutputs out = allocate_forward(mu, p, samples);
  const uint64_t seed = p.explicit_eps ? 0 : draw_seed();
  int64_t* state = out.rng.mutable_data_ptr<int64_t>();
  state[0] = static_cast<int64_t>(seed);
  state[1] = 0;
  const at::Tensor mu_c = mu.contiguous(), lv_c = logvar.contiguous();
  const at::Tensor pm_c = contiguous_or_empty(prior_mu), plv_c = contiguous_or_empty(prior_logvar);
  const at::Tensor eps_c = contiguous_or_empty(eps);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaezoo_reparameterize_fwd", [&] {
    const Inputs<scalar_t> in(p, mu_c, lv_c, pm_c, plv_c, eps_c, seed);
    scalar_t* z = out.z.mutable_data_ptr<scalar_t>();
    scalar_t* kl = out.kl.mutable_data_ptr<scalar_t>();
    scalar_t* log_q = out.log_q.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, p.B, grain_rows(p),
                     [&](int64_t b0, int64_t b1) { forward_block<scalar_t>(p, in, z, kl, log_q, b0, b1); });
  });
  return {out.z, out.kl, out.log_q, out.rng};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cpu(
    const at::Tensor& grad_z, const at::Tensor& grad_kl, const at::Tensor& grad_log_q, const at::Tensor& mu,
    const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu, const std::optional<at::Tensor>& prior_logvar,
    const std::optional<at::Tensor>& eps, const at::Tensor& rng) {
  const Problem p = make_problem(mu, logvar, prior_mu, prior_logvar, eps, samples_of(grad_z, mu));
  const uint64_t seed = static_cast<uint64_t>(rng.cpu().const_data_ptr<int64_t>()[0]);
  const BackwardOutputs out = allocate_backward(mu, p);
  const at::Tensor mu_c = mu.contiguous(), lv_c = logvar.contiguous();
  const at::Tensor pm_c = contiguous_or_empty(prior_mu), plv_c = contiguous_or_empty(prior_logvar);
  const at::Tensor eps_c = contiguous_or_empty(eps);
  const at::Tensor gz_c = grad_z.contiguous(), gkl_c = grad_kl.contiguous(), glq_c = grad_log_q.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaezoo_reparameterize_bwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Inputs<scalar_t> in(p, mu_c, lv_c, pm_c, plv_c, eps_c, seed);
    const scalar_t* gz = gz_c.const_data_ptr<scalar_t>();
    const scalar_t* gkl = gkl_c.const_data_ptr<scalar_t>();
    const scalar_t* glq = glq_c.const_data_ptr<scalar_t>();
    scalar_t* gm = out.grad_mu.mutable_data_ptr<scalar_t>();
    scalar_t* glv = out.grad_logvar.mutable_data_ptr<scalar_t>();
    acc_t* gpm = p.prior ? out.grad_prior_mu.mutable_data_ptr<acc_t>() : nullptr;
    acc_t* gplv = p.prior ? out.grad_prior_logvar.mutable_data_ptr<acc_t>() : nullptr;
    at::parallel_for(0, p.B, grain_rows(p), [&](int64_t b0, int64_t b1) {
      backward_block<scalar_t>(p, in, gz, gkl, glq, gm, glv, gpm, gplv, b0, b1);
    });
  });
  return finish_backward(out, mu, prior_mu, prior_logvar, p);
}

}  // namespace

TORCH_LIBRARY_IMPL(vaezoo, CPU, m) {
  m.impl("reparameterize_fwd", &forward_cpu);
  m.impl("reparameterize_bwd", &backward_cpu);
}

}  // namespace vaezoo
