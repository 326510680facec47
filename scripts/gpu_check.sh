#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: build vaezoo._C with its CUDA kernels against the python3 of the
# machine (in place, nothing installed), run the CUDA tests, train every variant for an epoch on the GPU and
# evaluate it, make the disentanglement table on dsprites and the vae-conv / vae-gan-conv comparison on
# Fashion-MNIST, then benchmark the operator if time is left. The operator's per-call rows (1x1, 8x4, 128x32
# against torch.add and the eager reference) run early, right after the CUDA tests: they take seconds.
# Logs and results go to $OUT (default ./gpu-check), packed into $OUT/results.tar.gz.
# Usage: DATA=folder-with-fashion-mnist bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
PYTHON=${PYTHON:-python3}
DATA=${DATA:-/usr/share/datasets}
BUDGET=${BUDGET:-540}  # seconds this script may take; the benchmark runs only if enough is left
mkdir -p "$OUT/logs" "$OUT/results"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD VAEZOO_CUDA=1 VAEZOO_CACHE=${VAEZOO_CACHE:-/tmp/vaezoo-cache}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-$(nproc)}
finish() { tar -czf "$OUT/results.tar.gz" -C "$OUT" logs results; }
trap finish EXIT

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/logs/machine.txt"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' | tee -a "$OUT/logs/machine.txt"

echo "== build"
start=$SECONDS
if ! "$PYTHON" setup.py build_ext --inplace >"$OUT/logs/build.log" 2>&1; then
  tail -40 "$OUT/logs/build.log"
  exit 1
fi
echo "built in $((SECONDS - start)) s"

echo "== dsprites rendered once, in the background (the table's processes share the cache)"
"$PYTHON" -c 'from vaezoo.data.datasets import load_dataset; load_dataset("dsprites")' >"$OUT/logs/dsprites.log" 2>&1 &
render=$!

echo "== CUDA tests"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_ops_cuda.py tests/test_ops_shard.py 2>&1 |
  tee "$OUT/logs/cuda-tests.log" | tail -6
tests=${PIPESTATUS[0]}

echo "== the operator's per-call cost: fused against torch.add (one kernel launch) and the eager reference"
timeout 180 "$PYTHON" -m vaezoo bench --device cuda:0 --part per-call ${PER_CALL_ARGS:---rounds 1 --min-run-time 0.5} \
  --json "$OUT/results/per-call-gpu.json" 2>&1 | tee "$OUT/logs/per-call.log" | tail -8

echo "== every variant: one epoch of digits on the GPU, then eval there (8 at a time)"
"$PYTHON" -m vaezoo list --json | "$PYTHON" -c 'import json, sys; print("\n".join(r["name"] for r in json.load(sys.stdin)))' |
  xargs -P 8 -I{} sh -c '"$0" -m vaezoo train {} --dataset digits --epochs 1 --device cuda --quiet --out /tmp/gpu-variants/{} >/dev/null 2>"$1/logs/variant-{}.err" &&
    "$0" -m vaezoo eval /tmp/gpu-variants/{} --device cuda --nll-samples 20 --json >"$1/logs/variant-{}.json" 2>>"$1/logs/variant-{}.err" &&
    echo "ok {}" || echo "FAILED {}"' "$PYTHON" "$OUT" | sort | tee "$OUT/logs/variants.txt" | grep -c ok

echo "== disentanglement on dsprites (one process per variant, 3 seeds each) beside vae-conv / vae-gan-conv"
wait "$render"
for v in vae-conv beta-vae-conv beta-tcvae-conv factor-vae-conv dip-vae-conv; do
  "$PYTHON" benchmarks/disentanglement/run.py --device cuda --variants "$v" --seeds 0 1 2 ${DIS_ARGS:---epochs 10 --limit 50000 --batch-size 256} \
    --runs /tmp/gpu-dis --out "$OUT/results/disentanglement-$v" >"$OUT/logs/dis-$v.log" 2>&1 &
done
"$PYTHON" benchmarks/quality/run.py --device cuda --variants vae-conv vae-gan-conv --epochs ${GAN_EPOCHS:-10} \
  --nll-samples 100 --sample-quality --compare vae-conv vae-gan-conv --data-dir "$DATA/fashion-mnist" \
  --runs /tmp/gpu-gan --results "$OUT/results" >"$OUT/logs/vae-vs-gan.log" 2>&1 &
wait
tail -n 3 "$OUT"/logs/dis-*.log "$OUT/logs/vae-vs-gan.log"

left=$((BUDGET - SECONDS))
if [ "$left" -gt 90 ]; then
  echo "== benchmark ($left s left)"
  timeout $((left - 20)) "$PYTHON" -m vaezoo bench --device cuda:0 --part sizes --json "$OUT/results/h200.json" \
    ${BENCH_ARGS:---rounds 2 --min-run-time 0.1} 2>&1 | tee "$OUT/logs/bench.log" | tail -24
else
  echo "== benchmark skipped: $left s left"
fi
exit "$tests"
