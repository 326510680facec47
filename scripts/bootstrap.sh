#!/usr/bin/env bash
# Set up everything vaezoo needs on a fresh machine: a virtual environment in .venv, PyTorch, the
# Fashion-MNIST files (Debian package, when run as root), and vaezoo itself with its C++/CUDA extension.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
torch_spec=${VAEZOO_TORCH:-torch==2.14.1}   # the CUDA 13.0 build: runs on the CPU too, and lets nvcc build the CUDA kernels

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet "$torch_spec" setuptools wheel ninja 2> >(grep -v "^WARNING: Location" >&2)

if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; } \
        || echo "bootstrap: could not install dataset-fashion-mnist; the digits dataset still works" >&2
fi

if [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
    export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
fi
.venv/bin/python -m pip install --quiet --no-build-isolation -e ".[test]" 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -c "import vaezoo.ops as ops; print('vaezoo ready; fused-op backends:', ops.backends())"
