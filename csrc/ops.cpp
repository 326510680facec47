// Schemas of the vaezoo operators, and the Python module vaezoo._C whose import registers them (its functions
// are in python_entry.cpp).
#include <Python.h>
#include <torch/library.h>

#include "python_entry.h"

extern "C" {
// Importing vaezoo._C loads this library, which runs the TORCH_LIBRARY registrations below.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "vaezoo's compiled operators", -1,
                                       vaezoo::python_methods()};
  return PyModule_Create(&module);
}
}

TORCH_LIBRARY(vaezoo, m) {
  // z = mu + exp(logvar / 2) * eps, kl per example, log q(z|x) per drawn sample, and the generator state
  // (seed, offset) that backward regenerates eps from. eps is drawn unless given; samples puts [K] in front of z.
  // row_start and row_total make the draw that of rows [row_start, row_start + B) of a batch of row_total rows:
  // data-parallel ranks drawing for their shards get the noise one process would draw for the whole batch.
  m.def(
      "reparameterize_fwd(Tensor mu, Tensor logvar, Tensor? prior_mu, Tensor? prior_logvar, Tensor? eps, "
      "int? samples, int row_start=0, int? row_total=None) -> (Tensor z, Tensor kl, Tensor log_q, Tensor rng)",
      {at::Tag::nondeterministic_seeded});
  // Gradients wrt mu, logvar, prior_mu, prior_logvar (the last two empty without a prior). An absent grad_kl or
  // grad_log_q counts as zeros, so that autograd need not launch a fill for outputs that were not used.
  m.def(
      "reparameterize_bwd(Tensor grad_z, Tensor? grad_kl, Tensor? grad_log_q, Tensor mu, Tensor logvar, "
      "Tensor? prior_mu, Tensor? prior_logvar, Tensor? eps, Tensor rng, int row_start=0, int? row_total=None) "
      "-> (Tensor grad_mu, Tensor grad_logvar, Tensor grad_prior_mu, Tensor grad_prior_logvar)");
}
