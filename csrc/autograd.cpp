// Autograd of vaezoo::reparameterize_fwd, in C++ for the Autograd dispatch key: a hand-written autograd Node,
// as PyTorch's own operators have (their generated *Backward nodes), not a torch::autograd::Function, whose
// general bookkeeping (an IValue dict for the saved values, a context, wrapping and checking every output, the
// generator state as a fourth output of the node) cost about as much as the kernels at small sizes.
//
// forward calls reparameterize_fwd below autograd and records a ReparameterizeBackward node for z, kl and log_q;
// rng, the generator state that backward regenerates eps from, is no output of the node (it has no gradient):
// the node keeps it as a saved variable. On the CPU, for small float32/float64 calls on plain tensors
// (cpu::keeps_draw), the node calls the CPU kernels directly (cpu::forward_keeping_draw): the forward's pass
// also writes the eps it drew and std = exp(logvar / 2), which backward reads (cpu::backward_kept_draw) rather
// than drawing eps and computing exp a second time. Otherwise backward calls reparameterize_bwd through the
// dispatcher (so CPU, CUDA and the fake kernels registered from Python all serve it, and torch.compile and
// torch.library.opcheck see the same two ops). It lives in C++ rather than in torch.library.register_autograd
// because the Python autograd layer cost 10-20 us per direction. A call with nothing to differentiate makes no
// node, and a backward without create_graph calls the backward kernel below autograd, past the Python autograd
// of reparameterize_bwd (vaezoo/ops/second_order.py, needed only for gradients of gradients).
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

// Whether every defined one of these tensors is a plain CPU tensor (cpu::plain_cpu): the dispatcher would hand
// a call with them straight to the CPU kernels, so calling those directly skips nothing.
bool plain_cpu_all(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (t->defined() && !cpu::plain_cpu(*t)) return false;
  }
  return true;
}

// The backward of one reparameterize_fwd call. Its inputs are the gradients of z, kl and log_q (undefined for
// an output that was not used: the kernel reads an absent grad_kl or grad_log_q as zeros, with no fill); its
// outputs, the gradients of mu, logvar, prior_mu, prior_logvar and eps (the next edges, in that order).
struct ReparameterizeBackward final : public torch::autograd::Node {
  SavedVariable mu, logvar, prior_mu, prior_logvar, eps;
  SavedVariable rng;  // the draw's generator state (seed, offset): backward regenerates eps from it
  SavedVariable std_dev;  // exp(logvar / 2) where the CPU forward kept its draw (cpu::forward_keeping_draw)
  std::optional<int64_t> samples;  // z is [samples, *mu.shape] when given, else mu's shape
  int64_t row_start = 0;
  std::optional<int64_t> row_total;

  std::string name() const override { return "ReparameterizeBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (SavedVariable* v : {&mu, &logvar, &prior_mu, &prior_logvar, &eps, &rng, &std_dev}) v->reset_data();
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
    const Tensor std_dev_ = std_dev.unpack();
    Quad grads_in;
    if (std_dev_.defined() && !at::GradMode::is_enabled() && plain_cpu_all({&grad_z, &grads[1], &grads[2]})) {
      // a kept draw: the CPU kernel with the forward's eps and std, past the dispatcher
      grads_in = cpu::backward_kept_draw(grad_z, grad_kl, grad_log_q, mu_, logvar_, prior_mu_, prior_logvar_, *eps_,
                                         std_dev_);
    } else if (at::GradMode::is_enabled()) {
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
  return plain_cpu_all(inputs) && cpu::keeps_draw(mu, samples);
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
  Tensor drawn_eps, drawn_std;  // on the CPU, the draw kept for backward and exp(logvar / 2), else undefined
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    if (!eps.has_value() && keeps_draw_on_cpu(inputs, mu, samples)) {
      cpu::KeptForward kept = cpu::forward_keeping_draw(mu, logvar, prior_mu, prior_logvar, samples, row_start,
                                                        row_total);
      out = {std::move(kept.z), std::move(kept.kl), std::move(kept.log_q), std::move(kept.rng)};
      drawn_eps = std::move(kept.eps);
      drawn_std = std::move(kept.std_dev);
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
  node->std_dev = SavedVariable(drawn_std, false);
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
