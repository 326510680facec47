// Host-side contract of the vaezoo::reparameterize_fwd/_bwd kernels, shared by the CPU and CUDA files:
// the problem's sizes and the shapes of the outputs.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace vaezoo {

// mu and logvar are [B, D] after flattening; z, eps and grad_z are [K, B, D].
struct Problem {
  int64_t B = 0;  // examples
  int64_t D = 0;  // elements per example
  int64_t K = 1;  // samples per example
  bool prior = false;         // diagonal Gaussian prior given (else N(0, I))
  bool shared_prior = false;  // the prior has no batch dimension
  bool explicit_eps = false;  // eps given (else drawn)
  // Drawn eps are those of rows [row_start, row_start + B) of a batch of row_total rows (a data-parallel
  // shard), so element (k, b, d) of z takes element (k, row_start + b, d) of that batch's noise stream.
  int64_t row_start = 0;
  int64_t row_total = 0;

  // Position in the noise stream of z's flat element j of sample k (j counts from z's start).
  int64_t noise_index(int64_t j, int64_t k) const { return j + (k * (row_total - B) + row_start) * D; }
};

inline Problem make_problem(const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
                            const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
                            int64_t samples, int64_t row_start, std::optional<int64_t> row_total) {
  TORCH_CHECK(mu.dim() >= 1, "vaezoo: mu must have a batch dimension");
  TORCH_CHECK(logvar.sizes() == mu.sizes() && logvar.scalar_type() == mu.scalar_type(),
              "vaezoo: logvar must match mu in shape and dtype");
  TORCH_CHECK(prior_mu.has_value() == prior_logvar.has_value(),
              "vaezoo: prior_mu and prior_logvar must be given together");
  Problem p;
  p.B = mu.size(0);
  p.D = p.B > 0 ? mu.numel() / p.B : c10::multiply_integers(mu.sizes().slice(1));
  p.K = samples;
  p.prior = prior_mu.has_value();
  if (p.prior) {
    for (const at::Tensor* t : {&*prior_mu, &*prior_logvar}) {
      TORCH_CHECK(t->scalar_type() == mu.scalar_type() && t->device() == mu.device(),
                  "vaezoo: the prior must match mu in dtype and device");
      TORCH_CHECK(t->numel() == p.B * p.D || t->numel() == p.D, "vaezoo: the prior must have mu's shape or mu.shape[1:]");
    }
    TORCH_CHECK(prior_mu->numel() == prior_logvar->numel(), "vaezoo: prior_mu and prior_logvar must match in shape");
    p.shared_prior = prior_mu->dim() < mu.dim() || (prior_mu->size(0) == 1 && p.B != 1);
  }
  p.row_start = row_start;
  p.row_total = row_total.value_or(row_start + p.B);
  TORCH_CHECK(p.row_start >= 0 && p.row_total >= p.row_start + p.B,
              "vaezoo: the rows [row_start, row_start + B) must lie within row_total rows");
  p.explicit_eps = eps.has_value();
  if (p.explicit_eps) {
    TORCH_CHECK(eps->numel() == p.K * p.B * p.D && eps->scalar_type() == mu.scalar_type() &&
                    eps->device() == mu.device(),
                "vaezoo: eps must have z's shape and mu's dtype and device");
  }
  return p;
}

// An optional input made contiguous, or an undefined tensor when it is absent.
inline at::Tensor contiguous_or_empty(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

// z's shape: mu's, with [K] in front when samples are asked for.
inline std::vector<int64_t> z_shape(const at::Tensor& mu, const std::optional<int64_t>& samples) {
  std::vector<int64_t> shape(mu.sizes().begin(), mu.sizes().end());
  if (samples.has_value()) shape.insert(shape.begin(), *samples);
  return shape;
}

// How the kernels allocate their outputs: at::empty unless a kernel passes its own (the CPU kernels pass
// at::detail::empty_cpu, which skips the dispatcher's hops).
struct DispatchedEmpty {
  at::Tensor operator()(at::IntArrayRef sizes, const at::TensorOptions& opts) const { return at::empty(sizes, opts); }
};

// z, kl, log_q (per drawn sample) and the generator state (seed, offset) of one forward call.
struct ForwardOutputs {
  at::Tensor z, kl, log_q, rng;
};

template <typename Empty = DispatchedEmpty>
inline ForwardOutputs allocate_forward(const at::Tensor& mu, const Problem& p, const std::optional<int64_t>& samples,
                                       const Empty& empty = {}) {
  const auto opts = mu.options();
  return {empty(z_shape(mu, samples), opts), empty({p.B}, opts),
          samples.has_value() ? empty({p.K, p.B}, opts) : empty({p.B}, opts), empty({2}, opts.dtype(at::kLong))};
}

// Number of samples K that grad_z of shape [K, *mu.shape] or mu.shape carries.
inline int64_t samples_of(const at::Tensor& grad_z, const at::Tensor& mu) {
  return grad_z.dim() > mu.dim() ? grad_z.size(0) : 1;
}

// grad_mu and grad_logvar (contiguous, mu's shape), and the prior's per-element gradients [B, D] in the
// accumulation dtype (undefined without a prior), reduced by finish_backward.
struct BackwardOutputs {
  at::Tensor grad_mu, grad_logvar, grad_prior_mu, grad_prior_logvar;
};

template <typename Empty = DispatchedEmpty>
inline BackwardOutputs allocate_backward(const at::Tensor& mu, const Problem& p, const Empty& empty = {}) {
  const auto acc_opts = mu.options().dtype(at::toOpMathType(mu.scalar_type()));
  const at::Tensor grad_mu = empty(mu.sizes(), mu.options());  // contiguous
  const at::Tensor grad_logvar = empty(mu.sizes(), mu.options());
  if (!p.prior) return {grad_mu, grad_logvar, at::Tensor(), at::Tensor()};
  return {grad_mu, grad_logvar, empty({p.B, p.D}, acc_opts), empty({p.B, p.D}, acc_opts)};
}

// The prior's gradients summed over the batch when it is shared, then shaped and typed like the prior.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> finish_backward(
    const BackwardOutputs& out, const at::Tensor& mu, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const Problem& p) {
  if (!p.prior) return {out.grad_mu, out.grad_logvar, at::empty({0}, mu.options()), at::empty({0}, mu.options())};
  const auto reduce = [&](const at::Tensor& per_element, const at::Tensor& prior) {
    const at::Tensor g = p.shared_prior ? per_element.sum(0) : per_element;
    return g.to(prior.scalar_type()).view(prior.sizes());
  };
  return {out.grad_mu, out.grad_logvar, reduce(out.grad_prior_mu, *prior_mu), reduce(out.grad_prior_logvar, *prior_logvar)};
}

}  // namespace vaezoo
