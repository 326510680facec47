// CUDA kernels of vaezoo::reparameterize_fwd/_bwd: one launch per direction on the current stream. A warp
// (short rows) or a block (long rows) owns a row; elements go four at a time (vector loads, one Philox call)
// when the row length and pointers allow it; the per-example sums are warp/block reductions.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <mutex>

#include "../philox.h"
#include "../reparameterize.h"

namespace vaezoo {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr double kLog2Pi = 1.8378770664093454836;

template <typename scalar_t>
struct Inputs {
  const scalar_t* mu;
  const scalar_t* logvar;
  const scalar_t* prior_mu;      // nullptr for N(0, I)
  const scalar_t* prior_logvar;  // nullptr for N(0, I)
  const scalar_t* eps;           // nullptr when drawn
  int64_t B, D, K;
  bool shared_prior;
  int64_t row_shift, sample_shift;  // noise index of z's element j of sample k: j + k * sample_shift + row_shift
};

template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

// W consecutive elements (W = 4: one vector access; W = 1: one element).
template <int W, typename T, typename A>
__device__ __forceinline__ void load(const T* p, A out[W]) {
  if constexpr (W == 4) {
    const Quad<T> q = *reinterpret_cast<const Quad<T>*>(p);
#pragma unroll
    for (int j = 0; j < 4; ++j) out[j] = static_cast<A>(q.v[j]);
  } else {
    out[0] = static_cast<A>(*p);
  }
}

template <int W, typename T, typename A>
__device__ __forceinline__ void store(T* p, const A in[W]) {
  if constexpr (W == 4) {
    Quad<T> q;
#pragma unroll
    for (int j = 0; j < 4; ++j) q.v[j] = static_cast<T>(in[j]);
    *reinterpret_cast<Quad<T>*>(p) = q;
  } else {
    *p = static_cast<T>(in[0]);
  }
}

// eps of z's elements idx .. idx + W - 1 of sample k: given, or from the Philox stream at their noise index
// (a multiple of 4 when W = 4).
template <int W, typename scalar_t, typename A>
__device__ __forceinline__ void load_eps(const Inputs<scalar_t>& in, uint64_t seed, uint64_t offset, int64_t idx,
                                         int64_t k, A out[W]) {
  if (in.eps != nullptr) {
    load<W>(in.eps + idx, out);
    return;
  }
  idx += k * in.sample_shift + in.row_shift;
  float n[4];
  rng::normal4(seed, offset, static_cast<uint64_t>(idx) / 4, n);
  if constexpr (W == 4) {
#pragma unroll
    for (int j = 0; j < 4; ++j) out[j] = static_cast<A>(n[j]);
  } else {
    const int r = static_cast<int>(idx & 3);
    out[0] = static_cast<A>(r == 0 ? n[0] : r == 1 ? n[1] : r == 2 ? n[2] : n[3]);
  }
}

// Sum of v over the G threads that share a row (a warp, or the whole block); every thread gets the total.
template <int G, typename A>
__device__ __forceinline__ A group_sum(A v, A* scratch) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if constexpr (G == kWarp) {
    return v;
  } else {
    constexpr int kWarps = kThreads / kWarp;
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    __syncthreads();  // scratch may still be read by the previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < kWarps ? scratch[lane] : A(0);
#pragma unroll
    for (int o = kWarps / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
  }
}

template <typename scalar_t, int G, int W>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(Inputs<scalar_t> in, at::PhiloxCudaState philox, scalar_t* z, scalar_t* kl, scalar_t* log_q,
                   int64_t* rng_out) {
  using acc_t = at::opmath_type<scalar_t>;
  __shared__ acc_t scratch[kThreads / kWarp];
  uint64_t seed = 0, offset = 0;
  if (in.eps == nullptr) {
    const auto state = at::cuda::philox::unpack(philox);
    seed = std::get<0>(state);
    offset = std::get<1>(state);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    rng_out[0] = static_cast<int64_t>(seed);
    rng_out[1] = static_cast<int64_t>(offset);
  }
  constexpr int kRowsPerBlock = kThreads / G;
  const int lane = threadIdx.x % G;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / G; b < in.B;
       b += static_cast<int64_t>(gridDim.x) * kRowsPerBlock) {
    const int64_t row = b * in.D;
    const int64_t prow = in.shared_prior ? 0 : row;
    for (int64_t k = 0; k < in.K; ++k) {
      const int64_t zrow = (k * in.B + b) * in.D;
      acc_t kl_sum = 0, q_sum = 0;  // q_sum: eps^2 + logvar, summed
      for (int64_t d = static_cast<int64_t>(lane) * W; d < in.D; d += static_cast<int64_t>(G) * W) {
        acc_t m[W], l[W], e[W], out[W];
        load<W>(in.mu + row + d, m);
        load<W>(in.logvar + row + d, l);
        load_eps<W>(in, seed, offset, zrow + d, k, e);
        acc_t pm[W], plv[W];
        if (k == 0 && in.prior_mu != nullptr) {
          load<W>(in.prior_mu + prow + d, pm);
          load<W>(in.prior_logvar + prow + d, plv);
        }
#pragma unroll
        for (int j = 0; j < W; ++j) {
          const acc_t s = math::exp_acc(acc_t(0.5) * l[j]);
          out[j] = m[j] + s * e[j];
          q_sum += e[j] * e[j] + l[j];
          if (k == 0) {
            if (in.prior_mu != nullptr) {
              const acc_t dm = m[j] - pm[j];
              kl_sum += acc_t(0.5) * (plv[j] - l[j] + (s * s + dm * dm) * math::exp_acc(-plv[j]) - acc_t(1));
            } else {
              kl_sum += acc_t(0.5) * (s * s + m[j] * m[j] - acc_t(1) - l[j]);
            }
          }
        }
        store<W>(z + zrow + d, out);
      }
      q_sum = group_sum<G>(q_sum, scratch);
      if (k == 0) kl_sum = group_sum<G>(kl_sum, scratch);
      if (lane == 0) {
        log_q[k * in.B + b] = static_cast<scalar_t>(acc_t(-0.5) * (q_sum + static_cast<acc_t>(in.D * kLog2Pi)));
        if (k == 0) kl[b] = static_cast<scalar_t>(kl_sum);
      }
    }
  }
}

template <typename scalar_t>
struct Grads {
  const scalar_t* grad_z;
  const scalar_t* grad_kl;     // nullptr: zeros
  const scalar_t* grad_log_q;  // nullptr: zeros
  scalar_t* grad_mu;
  scalar_t* grad_logvar;
  at::opmath_type<scalar_t>* grad_prior_mu;  // [B, D] per element; nullptr without a prior
  at::opmath_type<scalar_t>* grad_prior_logvar;
};

template <typename scalar_t, int G, int W>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(Inputs<scalar_t> in, Grads<scalar_t> g, const int64_t* rng) {
  using acc_t = at::opmath_type<scalar_t>;
  uint64_t seed = 0, offset = 0;
  if (in.eps == nullptr) {  // the forward call's generator state, read on the device (graph-capture safe)
    seed = static_cast<uint64_t>(rng[0]);
    offset = static_cast<uint64_t>(rng[1]);
  }
  constexpr int kRowsPerBlock = kThreads / G;
  const int lane = threadIdx.x % G;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / G; b < in.B;
       b += static_cast<int64_t>(gridDim.x) * kRowsPerBlock) {
    const int64_t row = b * in.D;
    const int64_t prow = in.shared_prior ? 0 : row;
    const acc_t gk = g.grad_kl != nullptr ? static_cast<acc_t>(g.grad_kl[b]) : acc_t(0);
    acc_t glq = 0;
    if (g.grad_log_q != nullptr) {
      for (int64_t k = 0; k < in.K; ++k) glq += static_cast<acc_t>(g.grad_log_q[k * in.B + b]);
    }
    const acc_t lq_term = acc_t(-0.5) * glq;  // d log_q / d logvar = -1/2 per element (total derivative)
    for (int64_t d = static_cast<int64_t>(lane) * W; d < in.D; d += static_cast<int64_t>(G) * W) {
      acc_t m[W], l[W], s[W], gm[W], gl[W];
      load<W>(in.mu + row + d, m);
      load<W>(in.logvar + row + d, l);
      if (in.prior_mu != nullptr) {
        acc_t pm[W], plv[W], gpm[W], gplv[W];
        load<W>(in.prior_mu + prow + d, pm);
        load<W>(in.prior_logvar + prow + d, plv);
#pragma unroll
        for (int j = 0; j < W; ++j) {
          s[j] = math::exp_acc(acc_t(0.5) * l[j]);
          const acc_t ipv = math::exp_acc(-plv[j]);
          const acc_t dm = m[j] - pm[j];
          const acc_t var = s[j] * s[j];
          gm[j] = gk * dm * ipv;
          gl[j] = gk * acc_t(0.5) * (var * ipv - acc_t(1)) + lq_term;
          gpm[j] = -gm[j];
          gplv[j] = gk * acc_t(0.5) * (acc_t(1) - (var + dm * dm) * ipv);
        }
        store<W>(g.grad_prior_mu + row + d, gpm);
        store<W>(g.grad_prior_logvar + row + d, gplv);
      } else {
#pragma unroll
        for (int j = 0; j < W; ++j) {
          s[j] = math::exp_acc(acc_t(0.5) * l[j]);
          gm[j] = gk * m[j];
          gl[j] = gk * acc_t(0.5) * (s[j] * s[j] - acc_t(1)) + lq_term;
        }
      }
      for (int64_t k = 0; k < in.K; ++k) {
        const int64_t zidx = (k * in.B + b) * in.D + d;
        acc_t e[W], gz[W];
        load_eps<W>(in, seed, offset, zidx, k, e);
        load<W>(g.grad_z + zidx, gz);
#pragma unroll
        for (int j = 0; j < W; ++j) {
          gm[j] += gz[j];
          gl[j] += acc_t(0.5) * gz[j] * s[j] * e[j];
        }
      }
      store<W>(g.grad_mu + row + d, gm);
      store<W>(g.grad_logvar + row + d, gl);
    }
  }
}

bool aligned4(const void* p, size_t element_size) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % (4 * element_size) == 0;
}

// Launch shape: G threads per row (a warp, or a block for long rows), W = 4 when every row starts on a
// 4-element boundary and every pointer is aligned for vector access. Results do not depend on it.
struct Launch {
  int group;
  bool vec;
  dim3 grid;
};

Launch plan(const Problem& p, std::initializer_list<std::pair<const void*, size_t>> pointers) {
  Launch l;
  l.group = p.D >= 1024 ? kThreads : kWarp;
  l.vec = p.D % 4 == 0;
  for (const auto& [ptr, size] : pointers) l.vec = l.vec && aligned4(ptr, size);
  const int64_t rows_per_block = kThreads / l.group;
  const int64_t max_blocks = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 32;
  l.grid = dim3(static_cast<unsigned>(std::clamp<int64_t>((p.B + rows_per_block - 1) / rows_per_block, 1, max_blocks)));
  return l;
}

// Calls f with the kernel template arguments <G, W> that the launch plan picked.
template <typename F>
void with_shape(const Launch& l, F&& f) {
  if (l.group == kThreads) {
    l.vec ? f(std::integral_constant<int, kThreads>{}, std::integral_constant<int, 4>{})
          : f(std::integral_constant<int, kThreads>{}, std::integral_constant<int, 1>{});
  } else {
    l.vec ? f(std::integral_constant<int, kWarp>{}, std::integral_constant<int, 4>{})
          : f(std::integral_constant<int, kWarp>{}, std::integral_constant<int, 1>{});
  }
}

template <typename scalar_t>
Inputs<scalar_t> make_inputs(const Problem& p, const at::Tensor& mu, const at::Tensor& lv, const at::Tensor& pm,
                             const at::Tensor& plv, const at::Tensor& eps) {
  return {mu.const_data_ptr<scalar_t>(),
          lv.const_data_ptr<scalar_t>(),
          p.prior ? pm.const_data_ptr<scalar_t>() : nullptr,
          p.prior ? plv.const_data_ptr<scalar_t>() : nullptr,
          p.explicit_eps ? eps.const_data_ptr<scalar_t>() : nullptr,
          p.B,
          p.D,
          p.K,
          p.shared_prior,
          p.noise_index(0, 0),
          p.noise_index(0, 1) - p.noise_index(0, 0)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cuda(
    const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
    std::optional<int64_t> samples, int64_t row_start, std::optional<int64_t> row_total) {
  const c10::cuda::OptionalCUDAGuard guard(mu.device());
  const Problem p = make_problem(mu, logvar, prior_mu, prior_logvar, eps, samples.value_or(1), row_start, row_total);
  ForwardOutputs out = allocate_forward(mu, p, samples);
  at::PhiloxCudaState philox;
  if (!p.explicit_eps) {
    auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(std::nullopt,
                                                                    at::cuda::detail::getDefaultCUDAGenerator());
    std::lock_guard<std::mutex> lock(gen->mutex_);
    philox = gen->philox_cuda_state(rng::kOffsetIncrement);
  }
  const at::Tensor mu_c = mu.contiguous(), lv_c = logvar.contiguous();
  const at::Tensor pm_c = contiguous_or_empty(prior_mu), plv_c = contiguous_or_empty(prior_logvar);
  const at::Tensor eps_c = contiguous_or_empty(eps);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaezoo_reparameterize_fwd_cuda", [&] {
    const Inputs<scalar_t> in = make_inputs<scalar_t>(p, mu_c, lv_c, pm_c, plv_c, eps_c);
    scalar_t* z = out.z.mutable_data_ptr<scalar_t>();
    const size_t size = sizeof(scalar_t);
    const Launch l = plan(p, {{in.mu, size}, {in.logvar, size}, {in.prior_mu, size}, {in.prior_logvar, size},
                              {in.eps, size}, {z, size}});
    with_shape(l, [&](auto G, auto W) {
      forward_kernel<scalar_t, decltype(G)::value, decltype(W)::value>
          <<<l.grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
              in, philox, z, out.kl.mutable_data_ptr<scalar_t>(), out.log_q.mutable_data_ptr<scalar_t>(),
              out.rng.mutable_data_ptr<int64_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {out.z, out.kl, out.log_q, out.rng};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cuda(
    const at::Tensor& grad_z, const std::optional<at::Tensor>& grad_kl, const std::optional<at::Tensor>& grad_log_q,
    const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps, const at::Tensor& rng,
    int64_t row_start, std::optional<int64_t> row_total) {
  const c10::cuda::OptionalCUDAGuard guard(mu.device());
  const Problem p =
      make_problem(mu, logvar, prior_mu, prior_logvar, eps, samples_of(grad_z, mu), row_start, row_total);
  TORCH_CHECK(rng.device() == mu.device() && rng.scalar_type() == at::kLong && rng.numel() == 2,
              "vaezoo: rng must be the int64[2] state that reparameterize_fwd returned, on mu's device");
  const BackwardOutputs out = allocate_backward(mu, p);
  const at::Tensor mu_c = mu.contiguous(), lv_c = logvar.contiguous();
  const at::Tensor pm_c = contiguous_or_empty(prior_mu), plv_c = contiguous_or_empty(prior_logvar);
  const at::Tensor eps_c = contiguous_or_empty(eps);
  const at::Tensor gz_c = grad_z.contiguous();
  const at::Tensor gkl_c = contiguous_or_empty(grad_kl), glq_c = contiguous_or_empty(grad_log_q);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaezoo_reparameterize_bwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Inputs<scalar_t> in = make_inputs<scalar_t>(p, mu_c, lv_c, pm_c, plv_c, eps_c);
    const Grads<scalar_t> g{gz_c.const_data_ptr<scalar_t>(),
                            grad_kl.has_value() ? gkl_c.const_data_ptr<scalar_t>() : nullptr,
                            grad_log_q.has_value() ? glq_c.const_data_ptr<scalar_t>() : nullptr,
                            out.grad_mu.mutable_data_ptr<scalar_t>(),
                            out.grad_logvar.mutable_data_ptr<scalar_t>(),
                            p.prior ? out.grad_prior_mu.mutable_data_ptr<acc_t>() : nullptr,
                            p.prior ? out.grad_prior_logvar.mutable_data_ptr<acc_t>() : nullptr};
    const size_t size = sizeof(scalar_t), acc_size = sizeof(acc_t);
    const Launch l = plan(p, {{in.mu, size}, {in.logvar, size}, {in.prior_mu, size}, {in.prior_logvar, size},
                              {in.eps, size}, {g.grad_z, size}, {g.grad_mu, size}, {g.grad_logvar, size},
                              {g.grad_prior_mu, acc_size}, {g.grad_prior_logvar, acc_size}});
    with_shape(l, [&](auto G, auto W) {
      backward_kernel<scalar_t, decltype(G)::value, decltype(W)::value>
          <<<l.grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(in, g, rng.const_data_ptr<int64_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return finish_backward(out, mu, prior_mu, prior_logvar, p);
}

}  // namespace

TORCH_LIBRARY_IMPL(vaezoo, CUDA, m) {
  m.impl("reparameterize_fwd", &forward_cuda);
  m.impl("reparameterize_bwd", &backward_cuda);
}

}  // namespace vaezoo
