// Autograd of vaezoo::reparameterize_fwd, in C++ for the Autograd dispatch key: a torch::autograd::Function
// whose forward calls reparameterize_fwd below autograd and whose backward calls reparameterize_bwd, both
// through the dispatcher (so CPU, CUDA and the fake kernels registered from Python all serve it, and
// torch.compile and torch.library.opcheck see the same two ops). It lives in C++ rather than in
// torch.library.register_autograd because the Python autograd layer cost 10-20 us per direction, which was
// most of the time of a call at small sizes (128x32). A call with nothing to differentiate makes no autograd
// node, and a backward without create_graph calls the backward kernel below autograd, past the Python autograd
// of reparameterize_bwd (vaezoo/ops/second_order.py, needed only for gradients of gradients).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <initializer_list>
#include <optional>
#include <tuple>
#include <vector>

namespace vaezoo {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using at::Tensor;
using OptTensor = std::optional<Tensor>;
using Quad = std::tuple<Tensor, Tensor, Tensor, Tensor>;

Quad call_forward(const Tensor& mu, const Tensor& logvar, const OptTensor& prior_mu, const OptTensor& prior_logvar,
                  const OptTensor& eps, std::optional<int64_t> samples, int64_t row_start,
                  std::optional<int64_t> row_total) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("vaezoo::reparameterize_fwd", "")
                             .typed<Quad(const Tensor&, const Tensor&, const OptTensor&, const OptTensor&,
                                         const OptTensor&, std::optional<int64_t>, int64_t, std::optional<int64_t>)>();
  return op.call(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
}

Quad call_backward(const Tensor& grad_z, const OptTensor& grad_kl, const OptTensor& grad_log_q, const Tensor& mu,
                   const Tensor& logvar, const OptTensor& prior_mu, const OptTensor& prior_logvar,
                   const OptTensor& eps, const Tensor& rng, int64_t row_start, std::optional<int64_t> row_total) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("vaezoo::reparameterize_bwd", "")
          .typed<Quad(const Tensor&, const OptTensor&, const OptTensor&, const Tensor&, const Tensor&, const OptTensor&,
                      const OptTensor&, const OptTensor&, const Tensor&, int64_t, std::optional<int64_t>)>();
  return op.call(grad_z, grad_kl, grad_log_q, mu, logvar, prior_mu, prior_logvar, eps, rng, row_start, row_total);
}

OptTensor defined_or_none(const Tensor& t) {
  return t.defined() ? OptTensor(t) : std::nullopt;
}

class Reparameterize : public torch::autograd::Function<Reparameterize> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& mu, const Tensor& logvar,
                               const OptTensor& prior_mu, const OptTensor& prior_logvar, const OptTensor& eps,
                               std::optional<int64_t> samples, int64_t row_start, std::optional<int64_t> row_total) {
    Quad out;
    {
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      out = call_forward(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
    }
    auto& [z, kl, log_q, rng] = out;
    // Backward regenerates eps from rng, the generator state of this call, instead of storing it.
    ctx->save_for_backward({mu, logvar, prior_mu.value_or(Tensor()), prior_logvar.value_or(Tensor()),
                            eps.value_or(Tensor()), rng});
    ctx->mark_non_differentiable({rng});
    // Unused outputs get no gradient (not zeros): backward is then one kernel launch, with no fills before it.
    ctx->set_materialize_grads(false);
    ctx->saved_data["z_sizes"] = z.sizes().vec();
    ctx->saved_data["row_start"] = row_start;
    ctx->saved_data["row_total"] = row_total;
    return {z, kl, log_q, rng};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor& mu = saved[0];
    const Tensor& logvar = saved[1];
    const OptTensor prior_mu = defined_or_none(saved[2]), prior_logvar = defined_or_none(saved[3]);
    const OptTensor eps = defined_or_none(saved[4]);
    const Tensor grad_z =
        grads[0].defined() ? grads[0] : at::zeros(ctx->saved_data["z_sizes"].toIntVector(), mu.options());
    const OptTensor grad_kl = defined_or_none(grads[1]), grad_log_q = defined_or_none(grads[2]);
    const auto backward_kernel = [&] {
      return call_backward(grad_z, grad_kl, grad_log_q, mu, logvar, prior_mu, prior_logvar, eps, saved[5],
                           ctx->saved_data["row_start"].toInt(), ctx->saved_data["row_total"].toOptional<int64_t>());
    };
    Quad grads_in;
    if (at::GradMode::is_enabled()) {
      // create_graph=True: through reparameterize_bwd's own autograd (vaezoo/ops/second_order.py), which
      // records the call so that gradients of these gradients are exact
      grads_in = backward_kernel();
    } else {
      // a plain backward needs no graph of this call: straight to the kernel, past that Python autograd layer
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      grads_in = backward_kernel();
    }
    auto& [grad_mu, grad_logvar, grad_pm, grad_plv] = grads_in;
    Tensor grad_eps;
    // needs_input_grad counts the tensor arguments that were given: mu, logvar, [prior_mu, prior_logvar,] eps
    const size_t eps_edge = prior_mu.has_value() ? 4 : 2;
    if (eps.has_value() && ctx->needs_input_grad(eps_edge)) {  // z = mu + std * eps and log_q = -eps^2 / 2 - ...
      grad_eps = grad_z * at::exp(0.5 * logvar);
      if (grad_log_q.has_value()) {
        std::vector<int64_t> shape(grad_log_q->sizes().begin(), grad_log_q->sizes().end());
        shape.resize(shape.size() + mu.dim() - 1, 1);
        grad_eps = grad_eps - grad_log_q->reshape(shape) * *eps;
      }
    }
    if (!prior_mu.has_value()) grad_pm = grad_plv = Tensor();
    return {grad_mu, grad_logvar, grad_pm, grad_plv, grad_eps, Tensor(), Tensor(), Tensor()};
  }
};

// Whether autograd must record a call with these inputs (a gradient, or a forward-mode tangent, to track).
bool needs_autograd(std::initializer_list<const Tensor*> inputs) {
  if (!at::GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs) {
    if (t->defined() && (t->requires_grad() || t->_fw_grad(/*level=*/0).defined())) return true;
  }
  return false;
}

Quad forward_autograd(const Tensor& mu, const Tensor& logvar, const OptTensor& prior_mu,
                      const OptTensor& prior_logvar, const OptTensor& eps, std::optional<int64_t> samples,
                      int64_t row_start, std::optional<int64_t> row_total) {
  static const Tensor none;
  if (!needs_autograd({&mu, &logvar, prior_mu ? &*prior_mu : &none, prior_logvar ? &*prior_logvar : &none,
                       eps ? &*eps : &none})) {
    // nothing to differentiate: no autograd node (its bookkeeping is a large part of a small call)
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return call_forward(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
  }
  const variable_list out =
      Reparameterize::apply(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
  return {out[0], out[1], out[2], out[3]};
}

}  // namespace

TORCH_LIBRARY_IMPL(vaezoo, Autograd, m) {
  m.impl("reparameterize_fwd", &forward_autograd);
}

}  // namespace vaezoo
