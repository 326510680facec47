// What the CPU kernels offer the autograd layer (csrc/autograd.cpp) besides the registered operators.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <utility>

namespace vaezoo::cpu {

// Whether t is a plain CPU tensor that the dispatcher hands straight to the CPU kernels: no fake, functional
// or subclass tensor, and no dispatch mode active.
bool plain_cpu(const at::Tensor& t);

// Whether autograd should draw eps once with draw_eps and hand it to both kernels, instead of letting backward
// regenerate it, for a call on plain CPU tensors with this mu: float32 or float64 (whose eps holds the drawn
// floats exactly, so that z, kl, log_q and the gradients are bit-identical to those of a drawn call) and z
// small enough for eps to stay in cache between the passes (keeping it was measured to pay at 128 x 32).
bool keeps_draw(const at::Tensor& mu, std::optional<int64_t> samples);

// The eps a reparameterize_fwd call with these arguments would draw (z's shape, mu's dtype), drawn now with one
// seed from the default generator, as that call would draw it; the seed is returned with it.
std::pair<at::Tensor, uint64_t> draw_eps(const at::Tensor& mu, std::optional<int64_t> samples, int64_t row_start,
                                         std::optional<int64_t> row_total);

}  // namespace vaezoo::cpu
