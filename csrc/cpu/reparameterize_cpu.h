// What the CPU kernels offer the autograd layer (csrc/autograd.cpp) besides the registered operators.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace vaezoo::cpu {

// Whether t is a plain CPU tensor that the dispatcher hands straight to the CPU kernels: no fake, functional
// or subclass tensor, and no dispatch mode active.
bool plain_cpu(const at::Tensor& t);

// Whether autograd should keep the draw of a call on plain CPU tensors with this mu (forward_keeping_draw),
// instead of letting backward regenerate eps: float32 or float64 (whose eps holds the drawn floats exactly, so
// that z, kl, log_q and the gradients are bit-identical to those of a drawn call) and z small enough for eps to
// stay in cache between the passes (keeping it was measured to pay at 128 x 32).
bool keeps_draw(const at::Tensor& mu, std::optional<int64_t> samples);

// A forward call that draws eps (reparameterize_fwd's outputs z, kl, log_q, rng), with what backward_kept_draw
// reads: the eps drawn (z's shape) and std_dev = exp(logvar / 2) (mu's shape), both written in the forward's
// pass.
struct KeptForward {
  at::Tensor z, kl, log_q, rng;
  at::Tensor eps, std_dev;
};

// reparameterize_fwd on the CPU kernel, drawing eps as that call would draw it, for a call keeps_draw accepts.
KeptForward forward_keeping_draw(const at::Tensor& mu, const at::Tensor& logvar,
                                 const std::optional<at::Tensor>& prior_mu,
                                 const std::optional<at::Tensor>& prior_logvar, std::optional<int64_t> samples,
                                 int64_t row_start, std::optional<int64_t> row_total);

// reparameterize_bwd on the CPU kernel for a call made by forward_keeping_draw, given its eps and std_dev (read
// instead of computing exp again): the same gradients, bit for bit. The prior's gradients are undefined
// tensors without a prior (the operator's schema returns empty ones).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_kept_draw(
    const at::Tensor& grad_z, const std::optional<at::Tensor>& grad_kl, const std::optional<at::Tensor>& grad_log_q,
    const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
    const std::optional<at::Tensor>& prior_logvar, const at::Tensor& eps, const at::Tensor& std_dev);

}  // namespace vaezoo::cpu
