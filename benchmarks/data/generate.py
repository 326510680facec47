"""Make a folder of N 64x64 RGB JPEGs for the data benchmark (never commit them: write under /tmp).

    python benchmarks/data/generate.py --n 200000 --out /tmp/vaezoo-bench/images-200000 [--processes 2]

Image i is drawn from a generator seeded by i (a colour gradient and a few ellipses, about 2-3 KB as JPEG), in
10 class sub-folders (c0..c9, by i mod 10), so every run makes the same folder. Resumable: each file is written
to a temporary name and renamed, files already there are kept, and `.complete` is written last; the work is
spread over processes in chunks.
"""
from __future__ import annotations

import argparse
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

SIZE = 64
CLASSES = 10
CHUNK = 500


def image_path(out: Path, i: int) -> Path:
    return out / f"c{i % CLASSES}" / f"{i:07d}.jpg"


def draw(i: int):
    """Image i: a seeded gradient with three ellipses."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(i)
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    pixels = (a * (1 - t) + b * t).astype(np.uint8) * np.ones((1, SIZE, 1), np.uint8)
    image = Image.fromarray(pixels, "RGB")
    pen = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = rng.integers(0, SIZE - 8, 2)
        w, h = rng.integers(6, SIZE // 2, 2)
        pen.ellipse([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def make_chunk(args: tuple[str, int, int]) -> int:
    """Write images start..stop-1 that are not there yet; how many were written."""
    out, start, stop = Path(args[0]), args[1], args[2]
    made = 0
    for i in range(start, stop):
        path = image_path(out, i)
        if path.exists():
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        draw(i).save(tmp, format="JPEG", quality=90)
        os.replace(tmp, path)
        made += 1
    return made


def generate(n: int, out: Path, processes: int) -> Path:
    """The folder of n images at `out`, made (or completed) here."""
    marker = out / ".complete"
    if marker.exists() and marker.read_text().strip() == str(n):
        return out
    for c in range(CLASSES):
        (out / f"c{c}").mkdir(parents=True, exist_ok=True)
    chunks = [(str(out), s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    start, made = time.perf_counter(), 0
    with Pool(processes) as pool:
        for k, count in enumerate(pool.imap_unordered(make_chunk, chunks), 1):
            made += count
            if k % 20 == 0 or k == len(chunks):
                print(f"generate: {k}/{len(chunks)} chunks, {made:,} images made "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    marker.write_text(f"{n}\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True, help="how many images")
    parser.add_argument("--out", type=Path, required=True, help="the folder to fill (under /tmp)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes")
    args = parser.parse_args()
    print(generate(args.n, args.out, args.processes))


if __name__ == "__main__":
    main()
