// vaezoo._C.reparameterize: the eager entry of vaezoo.ops.reparameterize, one C function that checks the
// arguments (checks.h) and calls vaezoo::reparameterize_fwd through the dispatcher, so that a call costs about
// what a torch function costs (a Python entry with its checks, backend and shard look-ups cost 5-10 us a call).
// It serves the common call: plain tensors, an int or None for samples, the fused kernels asked for ("auto"
// or "fused", $VAEZOO_BACKEND included) and built for mu's device, no __torch_function__ mode. For any other
// call it returns None, and the Python entry takes its general path (the reference backend, torch.compile's
// tracing, tensor subclasses, and the errors for arguments that are no tensors or unknown backends).
#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/PythonTorchFunctionTLS.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <tuple>

#include "checks.h"
#include "python_entry.h"

namespace vaezoo {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using OptInt = std::optional<int64_t>;
using Quad = std::tuple<Tensor, Tensor, Tensor, Tensor>;

const c10::OperatorHandle& forward_op() {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("vaezoo::reparameterize_fwd", "");
  return op;
}

// Whether this build has fused kernels for tensors on this device type (the op's CPU or CUDA kernel).
bool fused_built_for(c10::DeviceType type) {
  static const bool cpu = forward_op().hasKernelForDispatchKey(c10::DispatchKey::CPU);
  static const bool cuda = forward_op().hasKernelForDispatchKey(c10::DispatchKey::CUDA);
  return type == c10::DeviceType::CPU ? cpu : type == c10::DeviceType::CUDA && cuda;
}

// Whether `backend` asks for the fused kernels where built: "fused", or "auto" unless $VAEZOO_BACKEND says
// "reference" (or something unknown, which the general path reports).
bool wants_fused(PyObject* backend) {
  if (!PyUnicode_CheckExact(backend)) return false;
  if (PyUnicode_CompareWithASCIIString(backend, "fused") == 0) return true;
  if (PyUnicode_CompareWithASCIIString(backend, "auto") != 0) return false;
  const char* env = std::getenv("VAEZOO_BACKEND");  // os.environ writes through to the C environment
  return env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0 || std::strcmp(env, "fused") == 0;
}

// A Tensor or Parameter (no __torch_function__ of its own), into `out`.
bool plain_tensor(PyObject* obj, Tensor& out) {
  if (!THPVariable_CheckExact(obj)) return false;
  out = THPVariable_Unpack(obj);
  return true;
}

bool optional_tensor(PyObject* obj, OptTensor& out) {
  if (obj == Py_None) return true;
  Tensor t;
  if (!plain_tensor(obj, t)) return false;
  out = std::move(t);
  return true;
}

// None, or an int (not a bool) that fits int64, into `out`.
bool optional_int(PyObject* obj, OptInt& out) {
  if (obj == Py_None) return true;
  if (!PyLong_CheckExact(obj)) return false;
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (overflow != 0 || (value == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    return false;
  }
  out = value;
  return true;
}

// The enclosing noise_shard block: None, or a (start, total) tuple of ints.
bool shard_rows(PyObject* obj, int64_t& row_start, OptInt& row_total) {
  if (obj == Py_None) return true;
  OptInt start;
  if (!PyTuple_CheckExact(obj) || PyTuple_GET_SIZE(obj) != 2 || !optional_int(PyTuple_GET_ITEM(obj, 0), start) ||
      !start.has_value() || !optional_int(PyTuple_GET_ITEM(obj, 1), row_total) || !row_total.has_value()) {
    return false;
  }
  row_start = *start;
  return true;
}

// reparameterize(mu, logvar, prior_mu, prior_logvar, eps, samples, log_q, backend, shard) -> (z, kl[, log_q]),
// or None for a call that the Python entry's general path must take.
PyObject* reparameterize(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (nargs != 9) {
    PyErr_SetString(PyExc_TypeError, "vaezoo._C.reparameterize takes 9 positional arguments");
    return nullptr;
  }
  Tensor mu, logvar;
  OptTensor prior_mu, prior_logvar, eps;
  OptInt samples, row_total;
  int64_t row_start = 0;
  if (at::impl::torch_function_mode_enabled() || !wants_fused(args[7]) || !plain_tensor(args[0], mu) ||
      !plain_tensor(args[1], logvar) || !optional_tensor(args[2], prior_mu) ||
      !optional_tensor(args[3], prior_logvar) || !optional_tensor(args[4], eps) ||
      !optional_int(args[5], samples) || !shard_rows(args[8], row_start, row_total) ||
      !fused_built_for(mu.device().type())) {
    Py_RETURN_NONE;
  }
  const int log_q = PyObject_IsTrue(args[6]);
  if (log_q < 0) return nullptr;
  check_arguments(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
  static const auto op = forward_op().typed<Quad(const Tensor&, const Tensor&, const OptTensor&, const OptTensor&,
                                                 const OptTensor&, OptInt, int64_t, OptInt)>();
  Quad out;
  {
    pybind11::gil_scoped_release no_gil;
    out = op.call(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total);
  }
  PyObject* result = PyTuple_New(log_q ? 3 : 2);
  if (result == nullptr) return nullptr;
  PyTuple_SET_ITEM(result, 0, THPVariable_Wrap(std::move(std::get<0>(out))));
  PyTuple_SET_ITEM(result, 1, THPVariable_Wrap(std::move(std::get<1>(out))));
  if (log_q) PyTuple_SET_ITEM(result, 2, THPVariable_Wrap(std::move(std::get<2>(out))));
  return result;
  END_HANDLE_TH_ERRORS
}

PyMethodDef methods[] = {
    {"reparameterize", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(&reparameterize)),
     METH_FASTCALL,
     "reparameterize(mu, logvar, prior_mu, prior_logvar, eps, samples, log_q, backend, shard): the eager entry "
     "of vaezoo.ops.reparameterize; None when the call needs the general path."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

PyMethodDef* python_methods() {
  return methods;
}

}  // namespace vaezoo
