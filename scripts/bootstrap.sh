#!/usr/bin/env bash
# Set up everything vaezoo needs on a fresh machine: a virtual environment in .venv, PyTorch, the
# Fashion-MNIST files and headless Chromium (Debian packages, when run as root), vaezoo itself with its
# C++/CUDA extension, and the plugin in plugins/vaezoo-flows.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
torch_spec=${VAEZOO_TORCH:-torch==2.14.1}   # the CUDA 13.0 build: runs on the CPU too, and lets nvcc build the CUDA kernels

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet "$torch_spec" setuptools wheel ninja 2> >(grep -v "^WARNING: Location" >&2)

missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
        || echo "bootstrap: could not install ${missing[*]}: fashion-mnist or the report browser test may be unavailable" >&2
fi

if [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
    export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
fi
.venv/bin/python -m pip install --quiet --no-build-isolation -e ".[test]" 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -m pip install --quiet --no-build-isolation --no-deps ./plugins/vaezoo-flows 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -c "import vaezoo.ops as ops; print('vaezoo ready; fused-op backends:', ops.backends())"
