// The argument checks of vaezoo.ops.reparameterize (checks.h). Shapes, dtypes and devices are written as
// Python writes them ((2, 3), torch.float32, cuda:0), so the messages read the same as validation.py's.
#include "checks.h"

#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace vaezoo {
namespace {

std::string shape_str(c10::SymIntArrayRef shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

std::string dtype_str(at::ScalarType dtype) {
  return "torch." + std::string(c10::getDtypeNames(dtype).first);
}

void check_floating(const char* name, const at::Tensor& t) {
  const auto dtype = t.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16,
                   name, " must be a floating tensor (float32, float64, float16 or bfloat16), got ",
                   dtype_str(dtype));
}

// A tensor argument other than mu: floating, with mu's dtype, on mu's device.
void check_like_mu(const char* name, const at::Tensor& t, const at::Tensor& mu) {
  check_floating(name, t);
  TORCH_CHECK_TYPE(t.scalar_type() == mu.scalar_type(), name, " has dtype ", dtype_str(t.scalar_type()),
                   " but mu has ", dtype_str(mu.scalar_type()), "; they must match");
  TORCH_CHECK_VALUE(t.device() == mu.device(), name, " is on ", t.device().str(), " but mu is on ",
                    mu.device().str(), "; they must be on one device");
}

// Whether `shape` is `full` or `full` without its first dimension (that dimension dropped, or of size 1).
bool full_or_shared(c10::SymIntArrayRef shape, c10::SymIntArrayRef full) {
  const c10::SymIntArrayRef rows = full.slice(1);
  if (shape.size() == full.size()) {
    return shape == full || (shape[0] == 1 && shape.slice(1) == rows);
  }
  return shape == rows;
}

}  // namespace

void check_arguments(const at::Tensor& mu, const at::Tensor& logvar, const std::optional<at::Tensor>& prior_mu,
                     const std::optional<at::Tensor>& prior_logvar, const std::optional<at::Tensor>& eps,
                     std::optional<int64_t> samples, int64_t row_start, std::optional<int64_t> row_total) {
  check_floating("mu", mu);
  check_floating("logvar", logvar);
  TORCH_CHECK_VALUE(mu.dim() >= 1, "mu must have a batch dimension (shape [B, ...]), got a ", mu.dim(),
                    "-d tensor");
  check_like_mu("logvar", logvar, mu);
  const c10::SymIntArrayRef shape = mu.sym_sizes();
  TORCH_CHECK_VALUE(logvar.sym_sizes() == shape, "logvar has shape ", shape_str(logvar.sym_sizes()),
                    " but mu has ", shape_str(shape), "; they must match");
  TORCH_CHECK_VALUE(prior_mu.has_value() == prior_logvar.has_value(),
                    "prior_mu and prior_logvar must be given together (both tensors, or both None)");
  if (prior_mu.has_value()) {
    for (const auto& [name, p] : {std::pair<const char*, const at::Tensor*>{"prior_mu", &*prior_mu},
                                  std::pair<const char*, const at::Tensor*>{"prior_logvar", &*prior_logvar}}) {
      check_like_mu(name, *p, mu);
      TORCH_CHECK_VALUE(full_or_shared(p->sym_sizes(), shape), name, " has shape ", shape_str(p->sym_sizes()),
                        "; expected the shape of mu ", shape_str(shape), ", or one shared over the batch ",
                        shape_str(shape.slice(1)));
    }
    TORCH_CHECK_VALUE(prior_mu->sym_numel() == prior_logvar->sym_numel(), "prior_mu has shape ",
                      shape_str(prior_mu->sym_sizes()), " but prior_logvar has ",
                      shape_str(prior_logvar->sym_sizes()),
                      "; give both the shape of mu, or both one shared over the batch");
  }
  TORCH_CHECK_VALUE(!samples.has_value() || *samples >= 1, "samples must be a positive int or None, got ",
                    *samples);
  if (eps.has_value()) {
    check_like_mu("eps", *eps, mu);
    const c10::SymIntArrayRef given = eps->sym_sizes();
    const bool fits = samples.has_value()
                          ? given.size() == shape.size() + 1 && given[0] == *samples && given.slice(1) == shape
                          : given == shape;
    if (!fits) {
      std::vector<c10::SymInt> expected(shape.begin(), shape.end());
      if (samples.has_value()) expected.insert(expected.begin(), c10::SymInt(*samples));
      TORCH_CHECK_VALUE(false, "eps has shape ", shape_str(given), "; expected ", shape_str(expected),
                        " (the shape of z)");
    }
  }
  TORCH_CHECK_VALUE(!row_total.has_value() || shape[0] + row_start <= *row_total, "mu has ", shape[0],
                    " rows, more than the rows ", row_start, "..", *row_total, " left in the noise_shard block");
}

}  // namespace vaezoo
