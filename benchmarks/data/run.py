"""The data benchmark of issue 20: what streaming from disk costs in memory and time. Not a test.

    python benchmarks/data/run.py [--sizes 20000 200000] [--root /tmp/vaezoo-bench] [--workers 2]
        [--epochs 2] [--baseline-ref 5f345dc] [--skip dsprites fashion-mnist] [--max-seconds 3600]

For each N it generates (or reuses) a folder of N 64x64 RGB JPEGs under --root (generate.py; never commit
them) and runs, each `vaezoo train` in its own subprocess:

- `vaezoo train vae-conv --dataset folder --image-size 64 --channels 3 --workers W`: peak RSS (the largest
  single process, from getrusage(RUSAGE_CHILDREN) of a fresh parent) and the peak memory of the whole process
  tree, workers included (the sum of PSS, polled from /proc: forked workers share pages), seconds from launch to the first optimizer step (first_step.py) and
  the steady-state epoch time (the last epoch's `seconds` in metrics.jsonl);
- the same images as in-memory tensors (an .npz, which the arrays dataset holds in memory; same order, hence
  the same split), `--workers 0`: its steady-state epoch time, for the ratio streamed / in memory.

Then full dSprites' peak RSS (`vae-conv --dataset dsprites`, one epoch, cut off after --max-seconds: the peak
is reached in the first minutes), and Fashion-MNIST vae-mlp's epoch time in this tree against --baseline-ref
(default: the last commit before the data layer), extracted with `git archive` to a temporary folder, rounds
interleaved. Writes benchmarks/results/data.{json,md}; goals (issue 20): RSS <= 1.5 GB and within 10%
between the two N, first step <= 10 s, streamed / in memory <= 1.15, dSprites <= 1.5 GB, Fashion-MNIST <= 1.02x.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path[:0] = [str(HERE), str(REPO)]
from generate import generate  # noqa: E402

MEASURE = ("import json, resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(json.dumps({'rc': r.returncode, 'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


def process_table() -> tuple[dict[int, list[int]], dict[int, int]]:
    """(children of each pid, resident KB of each pid), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, IndexError, ValueError):
            continue
    return children, rss


def pss_kb(pid: int, rss_kb: int) -> int:
    """The proportional set size of `pid` (its pages, shared ones divided among their sharers), in KB; its
    RSS where smaps_rollup cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss_kb


def tree_pss_kb(root: int) -> int:
    """The memory of `root` and all its descendants (DataLoader workers share the pages they were forked with,
    so their RSS would count those once per worker: the sum of PSS counts each page once), in KB."""
    children, rss = process_table()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += pss_kb(pid, rss.get(pid, 0))
        stack.extend(children.get(pid, []))
    return total


def run_measured(argv: list[str], env: dict[str, str], max_seconds: float) -> dict:
    """Run the vaezoo command line `argv` (through first_step.py) in a fresh parent; its peak RSS (largest
    process; whole tree), seconds to the first optimizer step, wall time, exit status, whether it was cut off."""
    with tempfile.TemporaryDirectory() as tmp:
        stamp = Path(tmp) / "first_step"
        cmd = [sys.executable, "-c", MEASURE, sys.executable, str(HERE / "first_step.py"), str(stamp), *argv]
        start = time.time()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        peak = [0]

        def poll() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_pss_kb(proc.pid))
                time.sleep(0.2)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        cut = False
        try:
            out, err = proc.communicate(timeout=max_seconds)
        except subprocess.TimeoutExpired:
            cut = True
            for pid in process_table()[0].get(proc.pid, []):  # the trainer stops cleanly; its parent reports
                os.kill(pid, signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
        wall = time.time() - start
        watcher.join()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        report = json.loads(lines[-1]) if lines else {"rc": proc.returncode, "maxrss_kb": None}
        first = float(stamp.read_text()) - start if stamp.exists() else None
    result = {"rc": report["rc"], "cut_off": cut, "peak_rss_mb": report["maxrss_kb"] and report["maxrss_kb"] / 1024,
              "tree_peak_pss_mb": peak[0] / 1024, "first_step_s": first, "wall_s": wall}
    if report["rc"] not in (0, None) and not cut:
        result["error"] = err.strip().splitlines()[-1] if err.strip() else f"exit {report['rc']}"
    return result


def epoch_seconds(run: Path) -> list[float]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["seconds"] for line in path.read_text().splitlines() if line.strip()]


def train(args: argparse.Namespace, env: dict[str, str], out: Path, extra: list[str], max_seconds: float) -> dict:
    if out.exists():
        shutil.rmtree(out)
    argv = ["train", *extra, "--epochs", str(args.epochs), "--quiet", "--out", str(out)]
    result = run_measured(argv, env, max_seconds)
    seconds = epoch_seconds(out)
    result.update(epoch_seconds=seconds, steady_epoch_s=seconds[-1] if seconds else None)
    print(f"  {' '.join(extra)}: {json.dumps(result)}", flush=True)
    return result


def in_memory_copy(folder: Path, n: int) -> Path:
    """The folder's images (64x64 RGB, listing order) and labels as an .npz beside it (made once)."""
    path = folder.with_suffix(".npz")
    if path.exists():
        return path
    from vaezoo.data.image_folder import load_image_folder

    data = load_image_folder(folder, image_size=64, channels=3, prepare=True)
    images = data.train.file.array()  # the prepared cache: every image, in listing order
    labels = np.empty(n, dtype=np.int64)
    labels[data.train.rows], labels[data.test.rows] = data.train.labels.numpy(), data.test.labels.numpy()
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, x=np.asarray(images), y=labels)
    os.replace(tmp, path)
    return path


def baseline_tree(ref: str, into: Path) -> Path:
    """The source tree of `ref` (git archive), with this tree's compiled extension copied in."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    for built in (REPO / "vaezoo").glob("_C*.so"):
        shutil.copy2(built, into / "vaezoo" / built.name)
    return into


def fashion_mnist(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict:
    """vae-mlp on Fashion-MNIST, one epoch, this tree against the baseline, interleaved rounds."""
    old = baseline_tree(args.baseline_ref, work / "baseline")
    times: dict[str, list[float]] = {"current": [], "baseline": []}
    for round_ in range(args.rounds):
        for name, tree in (("current", REPO), ("baseline", old))[:: 1 if round_ % 2 == 0 else -1]:
            run_env = {**env, "PYTHONPATH": str(tree)}
            out = work / f"fm-{name}"
            if out.exists():
                shutil.rmtree(out)
            subprocess.run([sys.executable, "-m", "vaezoo", "train", "vae-mlp", "--dataset", "fashion-mnist",
                            "--epochs", "1", "--quiet", "--out", str(out)], env=run_env, check=True)
            times[name] += epoch_seconds(out)
            print(f"  fashion-mnist {name}: {times[name][-1]:.2f} s", flush=True)
    ratios = [c / b for c, b in zip(times["current"], times["baseline"])]
    return {"baseline_ref": args.baseline_ref, "epoch_s": times, "median_ratio": statistics.median(ratios)}


def table(results: dict) -> str:
    rows = ["| measure | " + " | ".join(f"N = {n:,}" for n in results["folder"]) + " | goal |",
            "|---|" + "---|" * len(results["folder"]) + "---|"]

    def fmt(value, unit="") -> str:
        return "n/a" if value is None else f"{value:,.1f}{unit}" if isinstance(value, float) else str(value)

    def row(label: str, pick, goal: str) -> None:
        rows.append(f"| {label} | " + " | ".join(pick(r) for r in results["folder"].values()) + f" | {goal} |")

    row("peak RSS, vaezoo train process (MB)", lambda r: fmt(r["streamed"]["peak_rss_mb"]), "<= 1,536, within 10%")
    row("peak PSS, with its workers (MB)", lambda r: fmt(r["streamed"]["tree_peak_pss_mb"]), "")
    row("seconds to the first optimizer step", lambda r: fmt(r["streamed"]["first_step_s"]), "<= 10")
    row("steady epoch, streamed (s)", lambda r: fmt(r["streamed"]["steady_epoch_s"]), "")
    row("steady epoch, in memory (s)", lambda r: fmt(r["in_memory"]["steady_epoch_s"]), "")
    row("streamed / in memory", lambda r: fmt(r.get("ratio")), "<= 1.15")
    lines = ["\n".join(rows), ""]
    if "dsprites" in results:
        d = results["dsprites"]
        lines.append(f"Full dSprites (vae-conv): peak RSS {fmt(d['peak_rss_mb'])} MB (with workers "
                     f"{fmt(d['tree_peak_pss_mb'])} MB PSS){' (cut off after --max-seconds)' if d['cut_off'] else ''}; "
                     "goal <= 1,536 MB.")
    if "fashion_mnist" in results:
        f = results["fashion_mnist"]
        lines.append(f"Fashion-MNIST vae-mlp epoch: {statistics.median(f['epoch_s']['current']):.2f} s against "
                     f"{statistics.median(f['epoch_s']['baseline']):.2f} s at {f['baseline_ref']} "
                     f"(median paired ratio {f['median_ratio']:.3f}; goal <= 1.02).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/vaezoo-bench"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; the last one's time is reported")
    parser.add_argument("--rounds", type=int, default=3, help="Fashion-MNIST rounds")
    parser.add_argument("--baseline-ref", default="5f345dc", help="the git ref Fashion-MNIST is compared with")
    parser.add_argument("--skip", nargs="*", default=[], choices=["folder", "dsprites", "fashion-mnist"])
    parser.add_argument("--max-seconds", type=float, default=3600, help="cut a run off after this long")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="for generating images")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where data.json and data.md go")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": str(REPO), "VAEZOO_CACHE": str(args.root / "cache"),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    results: dict = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                     "workers": args.workers, "epochs": args.epochs, "folder": {}}
    os.environ["VAEZOO_CACHE"] = env["VAEZOO_CACHE"]  # the in-memory copies are decoded through the same cache
    work = Path(tempfile.mkdtemp(prefix="vaezoo-data-bench-"))
    try:
        if "folder" not in args.skip:
            for n in args.sizes:
                print(f"N = {n:,}", flush=True)
                folder = generate(n, args.root / f"images-{n}", args.processes)
                streamed = train(args, env, work / "streamed", [
                    "vae-conv", "--dataset", "folder", "--data-dir", str(folder), "--image-size", "64",
                    "--channels", "3", "--workers", str(args.workers)], args.max_seconds)
                arrays = in_memory_copy(folder, n)
                memory = train(args, env, work / "memory", [
                    "vae-conv", "--dataset", "arrays", "--data-dir", str(arrays), "--workers", "0"], args.max_seconds)
                ratio = (streamed["steady_epoch_s"] / memory["steady_epoch_s"]
                         if streamed["steady_epoch_s"] and memory["steady_epoch_s"] else None)
                results["folder"][n] = {"streamed": streamed, "in_memory": memory, "ratio": ratio}
        if "dsprites" not in args.skip:
            print("full dSprites", flush=True)
            results["dsprites"] = train(argparse.Namespace(**{**vars(args), "epochs": 1}), env, work / "dsprites", [
                "vae-conv", "--dataset", "dsprites", "--workers", str(args.workers)], args.max_seconds)
        if "fashion-mnist" not in args.skip:
            print("Fashion-MNIST vae-mlp", flush=True)
            results["fashion_mnist"] = fashion_mnist(args, env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "data.md").write_text(f"# Data benchmark ({results['machine']}, {results['cpus']} CPUs, "
                                      f"{args.workers} workers)\n\n" + table(results))
    print(table(results))


if __name__ == "__main__":
    main()
