#!/usr/bin/env bash
# Set up everything vaezoo needs on a fresh machine: a virtual environment in .venv, PyTorch, the
# Fashion-MNIST files and headless Chromium (Debian packages, when run as root), vaezoo itself with its
# C++/CUDA extension, and the plugins in plugins/vaezoo-flows and plugins/vaezoo-weights (pretrained weights).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
torch_spec=${VAEZOO_TORCH:-torch==2.14.1}   # the CUDA 13.0 build: runs on the CPU too, and lets nvcc build the CUDA kernels

# took STEP: how long STEP took (0 s where its inputs had not changed), for CI's log
mark=$SECONDS
took() { echo "bootstrap: $1 $((SECONDS - mark)) s"; mark=$SECONDS; }

[ -x .venv/bin/python ] || "$python" -m venv .venv
took venv

# stamp NAME FILES...: true when the hash of FILES (and the build settings) equals the one saved for NAME, so
# a step whose inputs have not changed since it last succeeded is skipped; `stamp_save NAME FILES...` records it.
stamp_hash() { { find "$@" -type f ! -path "*/__pycache__/*" ! -path "*.egg-info/*" ! -path "*/build/*" -print0 \
    | sort -z | xargs -0 sha256sum; echo "$torch_spec ${CUDA_HOME:-} ${TORCH_CUDA_ARCH_LIST:-}"; } | sha256sum | cut -d' ' -f1; }
stamp() { local name=$1; shift; [ -f ".venv/.stamp-$name" ] && [ "$(cat ".venv/.stamp-$name")" = "$(stamp_hash "$@")" ]; }
stamp_save() { local name=$1; shift; stamp_hash "$@" > ".venv/.stamp-$name"; }

if ! stamp torch pyproject.toml; then
    .venv/bin/python -m pip install --quiet "$torch_spec" setuptools wheel ninja 2> >(grep -v "^WARNING: Location" >&2)
    stamp_save torch pyproject.toml
fi
took torch

missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
        || echo "bootstrap: could not install ${missing[*]}: fashion-mnist or the report browser test may be unavailable" >&2
fi
took "Debian packages"

if [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
    export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
fi
# the editable install builds vaezoo._C (minutes): only when csrc/, setup.py or pyproject.toml changed
if ! stamp vaezoo csrc setup.py pyproject.toml || ! .venv/bin/python -c "import vaezoo._C" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet --no-build-isolation -e ".[test]" 2> >(grep -v "^WARNING: Location" >&2)
    stamp_save vaezoo csrc setup.py pyproject.toml
fi
took "vaezoo and its extension"
if ! stamp flows plugins/vaezoo-flows; then
    .venv/bin/python -m pip install --quiet --no-build-isolation --no-deps ./plugins/vaezoo-flows 2> >(grep -v "^WARNING: Location" >&2)
    stamp_save flows plugins/vaezoo-flows
fi
if ! stamp weights plugins/vaezoo-weights; then
    .venv/bin/python -m pip install --quiet --no-build-isolation --no-deps ./plugins/vaezoo-weights 2> >(grep -v "^WARNING: Location" >&2)
    stamp_save weights plugins/vaezoo-weights
fi
took "the plugins vaezoo-flows and vaezoo-weights"
.venv/bin/python -c "import vaezoo.ops as ops; print('vaezoo ready; fused-op backends:', ops.backends())"
