// Autograd of vaezoo::reparameterize_fwd, in C++ for the Autograd dispatch key: a hand-written autograd Node,
// as PyTorch's own operators have (their generated *Backward nodes), not a torch::autograd::Function, whose
// general bookkeeping (an IValue dict for the saved values, a context, wrapping and checking every output, the
// generator state as a fourth output of the node) cost about as much as the kernels at small sizes.
//
// forward calls reparameterize_fwd below autograd and records a ReparameterizeBackward node for z, kl and log_q;
// rng, the generator state that backward regenerates eps from, is no output of the node (it has no gradient):
// the node keeps it as a saved variable. On the CPU, for small float32/float64 calls (cpu::keeps_draw), the draw
// is made here instead (the same eps from the same seed) and handed to both kernels, so backward reads eps
// rather than drawing it a second time. backward calls reparameterize_bwd through the dispatcher (so CPU, CUDA
// and the fake kernels registered from Python all serve it, and torch.compile and torch.library.opcheck see the
// same two ops). It lives in C++ rather than in torch.library.register_autograd because the Python autograd
// layer cost 10-20 us per direction. A call with nothing to differentiate makes no node, and a backward without
// create_graph calls the backward kernel below autograd, past the Python autograd of reparameterize_bwd
// (vaezoo/ops/second_order.py, needed only for gradients of gradients).
#include <ATen/ATen.h>
#include <ATen/FuncTorchTLS.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/library.h>

#include "cpu/reparameterize_cpu.h"

#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace vaezoo {
namespace {

using torch::autograd::SavedVariable;
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

// The backward of one reparameterize_fwd call. Its inputs are the gradients of z, kl and log_q (undefined for
// an output that was not used: the kernel reads an absent grad_kl or grad_log_q as zeros, with no fill); its
// outputs, the gradients of mu, logvar, prior_mu, prior_logvar and eps (the next edges, in that order).
struct ReparameterizeBackward final : public torch::autograd::Node {
  SavedVariable mu, logvar, prior_mu, prior_logvar, eps;
  SavedVariable rng;  // the draw's generator state (seed, offset): backward regenerates eps from it
  std::optional<int64_t> samples;  // z is [samples, *mu.shape] when given, else mu's shape
  int64_t row_start = 0;
  std::optional<int64_t> row_total;

  std::string name() const override { return "ReparameterizeBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (SavedVariable* v : {&mu, &logvar, &prior_mu, &prior_logvar, &eps, &rng}) v->reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const Tensor mu_ = mu.unpack(), logvar_ = logvar.unpack(), rng_ = rng.unpack();
    const OptTensor prior_mu_ = defined_or_none(prior_mu.unpack());
    const OptTensor prior_logvar_ = defined_or_none(prior_logvar.unpack());
    const OptTensor eps_ = defined_or_none(eps.unpack());
    Tensor grad_z = grads[0];
    if (!grad_z.defined()) {  // z not used: the kernel needs its zeros (kl's and log_q's terms still count)
      std::vector<c10::SymInt> shape(mu_.sym_sizes().begin(), mu_.sym_sizes().end());
      if (samples.has_value()) shape.insert(shape.begin(), c10::SymInt(*samples));
      grad_z = at::zeros_symint(shape, mu_.options());
    }
    const OptTensor grad_kl = defined_or_none(grads[1]), grad_log_q = defined_or_none(grads[2]);
    Quad grads_in;
    if (at::GradMode::is_enabled()) {
      // create_graph=True: through reparameterize_bwd's own autograd (vaezoo/ops/second_order.py), which
      // records the call so that gradients of these gradients are exact
      grads_in = call_backward(grad_z, grad_kl, grad_log_q, mu_, logvar_, prior_mu_, prior_logvar_, eps_, rng_,
                               row_start, row_total);
    } else {
      // a plain backward needs no graph of this call: straight to the kernel, past that Python autograd layer
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      grads_in = call_backward(grad_z, grad_kl, grad_log_q, mu_, logvar_, prior_mu_, prior_logvar_, eps_, rng_,
                               row_start, row_total);
    }
    auto& [grad_mu, grad_logvar, grad_pm, grad_plv] = grads_in;
    Tensor grad_eps;
    if (eps_.has_value() && task_should_compute_output(4)) {  // z = mu + std * eps and log_q = -eps^2 / 2 - ...
      grad_eps = grad_z * at::exp(0.5 * logvar_);
      if (grad_log_q.has_value()) {
        std::vector<int64_t> shape(grad_log_q->sizes().begin(), grad_log_q->sizes().end());
        shape.resize(shape.size() + mu_.dim() - 1, 1);
        grad_eps = grad_eps - grad_log_q->reshape(shape) * *eps_;
      }
    }
    if (!prior_mu_.has_value()) grad_pm = grad_plv = Tensor();
    return {std::move(grad_mu), std::move(grad_logvar), std::move(grad_pm), std::move(grad_plv), std::move(grad_eps)};
  }
};

// Whether autograd must record a call with these inputs: grad mode on and a tensor that requires grad.
bool records_graph(std::initializer_list<const Tensor*> inputs) {
  if (!at::GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

// Whether this call's draw is made by autograd and kept for backward: plain CPU inputs (cpu::plain_cpu) and a
// size and dtype where that is faster and exact (cpu::keeps_draw).
bool keeps_draw_on_cpu(std::initializer_list<const Tensor*> inputs, const Tensor& mu, std::optional<int64_t> samples) {
  for (const Tensor* t : inputs) {
    if (t->defined() && !cpu::plain_cpu(*t)) return false;
  }
  return cpu::keeps_draw(mu, samples);
}

Quad forward_autograd(const Tensor& mu, const Tensor& logvar, const OptTensor& prior_mu,
                      const OptTensor& prior_logvar, const OptTensor& eps, std::optional<int64_t> samples,
                      int64_t row_start, std::optional<int64_t> row_total) {
  static const Tensor none;
  const std::initializer_list<const Tensor*> inputs = {
      &mu, &logvar, prior_mu ? &*prior_mu : &none, prior_logvar ? &*prior_logvar : &none, eps ? &*eps : &none};
  for (const Tensor* t : inputs) {
    TORCH_CHECK(!t->defined() || !t->_fw_grad(/*level=*/0).defined(),
                "vaezoo: the fused reparameterize has no forward-mode AD (a dual tensor's tangent would be "
                "dropped); use backend='reference' for forward-mode gradients");
  }
  if (!records_graph(inputs)) {
    // nothing to differentiate: no autograd node (its bookkeeping is a large part of a small call)
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return call_forward(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
  }
  if (const auto& functorch_tls = at::functorch::functorchTLSAccessor()) {
    // under torch.func transforms a C++ autograd node is not supported: an error rather than silent misuse
    functorch_tls->checkSupportsCppAutogradFunction();
  }
  auto node = c10::make_intrusive<ReparameterizeBackward>();
  node->set_next_edges(torch::autograd::collect_next_edges(mu, logvar, prior_mu, prior_logvar, eps));
  Quad out;
  Tensor drawn_eps;  // on the CPU, the draw made here for both kernels (see cpu::keeps_draw), else undefined
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    if (!eps.has_value() && keeps_draw_on_cpu(inputs, mu, samples)) {
      uint64_t seed = 0;
      std::tie(drawn_eps, seed) = cpu::draw_eps(mu, samples, row_start, row_total);
      out = call_forward(mu, logvar, prior_mu, prior_logvar, drawn_eps, samples, row_start, row_total);
      // rng (seed, offset) of a call with eps given is (0, 0): the state this draw came from, as a call that
      // draws returns it (the kernel made this tensor for this call alone)
      std::get<3>(out).mutable_data_ptr<int64_t>()[0] = static_cast<int64_t>(seed);
    } else {
      out = call_forward(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
    }
  }
  auto& [z, kl, log_q, rng] = out;
  node->mu = SavedVariable(mu, /*is_output=*/false);
  node->logvar = SavedVariable(logvar, false);
  node->prior_mu = SavedVariable(prior_mu, false);
  node->prior_logvar = SavedVariable(prior_logvar, false);
  // the given eps, or the one drawn here: backward then reads it instead of regenerating it (its gradient is
  // computed only for a given eps, whose edge is the fifth)
  node->eps = eps.has_value() ? SavedVariable(*eps, false) : SavedVariable(drawn_eps, false);
  node->rng = SavedVariable(rng, false);  // rng has no gradient: it is saved, not an output of the node
  node->samples = samples;
  node->row_start = row_start;
  node->row_total = row_total;
  for (Tensor* t : {&z, &kl, &log_q}) torch::autograd::create_gradient_edge(*t, node);
  torch::autograd::fire_node_creation_hooks(node);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(vaezoo, Autograd, m) {
  m.impl("reparameterize_fwd", &forward_autograd);
}

}  // namespace vaezoo
