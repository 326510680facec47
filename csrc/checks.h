// The argument checks of vaezoo.ops.reparameterize: a ValueError or TypeError (TORCH_CHECK_VALUE/_TYPE) that
// names the argument and what was expected. vaezoo/ops/validation.py makes the same checks, with the same
// messages, where this code cannot run (under torch.compile's tracing, and in builds without vaezoo._C).
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace vaezoo {

// Raises for the first argument that does not fit the operator's contract: floating dtypes, mu's dtype and
// device for every tensor, logvar shaped like mu, a prior of mu's shape or one shared over the batch, eps of
// z's shape, samples >= 1, and the rows [row_start, row_start + B) within row_total (a noise_shard block).
void check_arguments(const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
                     const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
                     std::optional<int64_t> samples, int64_t row_start, std::optional<int64_t> row_total);

}  // namespace vaezoo
