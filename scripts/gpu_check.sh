#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: build vaezoo._C with its CUDA kernels against the python3 of the
# machine (in place, nothing installed), run the CUDA tests, benchmark on the GPU, train a small VAE on it, and
# train under torchrun with nccl beside a plain run.
# Logs and the benchmark JSON go to $OUT (default ./gpu-check). Usage: bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD VAEZOO_CUDA=1
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-$(nproc)}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/machine.txt"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' | tee -a "$OUT/machine.txt"

echo "== build"
start=$SECONDS
if ! "$PYTHON" setup.py build_ext --inplace >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  exit 1
fi
echo "built in $((SECONDS - start)) s"

echo "== CUDA tests"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_ops_cuda.py tests/test_ops_shard.py 2>&1 |
  tee "$OUT/cuda-tests.log" | tail -25
tests=$?

echo "== benchmark"
"$PYTHON" -m vaezoo bench --device cuda:0 --json "$OUT/bench.json" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"

echo "== training on the GPU"
{
  "$PYTHON" -m vaezoo train vae-conv --dataset digits --epochs 5 --device cuda --out /tmp/vaezoo-gpu-run --quiet &&
    "$PYTHON" -m vaezoo eval /tmp/vaezoo-gpu-run --device cuda --nll-samples 100
} 2>&1 | tee "$OUT/train.log" | tail -12
echo "== training with nccl under torchrun (one process per GPU) against one plain process"
train=(-m vaezoo train vae-mlp --dataset digits --epochs 3 --batch-size 100 --device cuda --quiet)
"$PYTHON" "${train[@]}" --out /tmp/vaezoo-gpu-plain >/dev/null 2>&1
"$PYTHON" -m torch.distributed.run --standalone --nproc-per-node "$(nvidia-smi -L | wc -l)" "${train[@]}" \
  --out /tmp/vaezoo-gpu-nccl 2>&1 | tee "$OUT/nccl.log" | tail -3
paste -d'\n' /tmp/vaezoo-gpu-plain/metrics.jsonl /tmp/vaezoo-gpu-nccl/metrics.jsonl | tee -a "$OUT/nccl.log"
exit "$tests"
