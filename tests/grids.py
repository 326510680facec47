"""Reading back the picture grids vaezoo writes (vaezoo.analysis.pictures.grid_array), to check what they show.

A grid of N images of h x w pixels in `nrow` columns is upscaled so that its larger side is at least 32 pixels
(an integer factor), each cell is framed by `PAD` white pixels, and the PNG is
    width  = nrow * (w * scale + PAD) + PAD,    height = ceil(N / nrow) * (h * scale + PAD) + PAD.
"""
from __future__ import annotations

import base64
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import torch
from PIL import Image

PAD = 2
MIN_CELL = 32
QUANTUM = 0.5 / 255 + 1e-6  # what 8-bit rounding may move a pixel in [0, 1]


def grid_size(n: int, nrow: int, h: int = 8, w: int = 8) -> tuple[int, int]:
    """(width, height) in pixels of the PNG holding n h x w images in nrow columns."""
    scale = max(1, MIN_CELL // max(h, w))
    return nrow * (w * scale + PAD) + PAD, math.ceil(n / nrow) * (h * scale + PAD) + PAD


def read_cells(path: str | Path, n: int, nrow: int, h: int = 8, w: int = 8) -> torch.Tensor:
    """The n images shown in the greyscale grid at `path`, as [n, 1, h, w] floats in [0, 1].

    Checks on the way that the PNG is 8-bit grey of exactly the grid's size, that every pixel outside the
    cells (frames and the empty cells after the n-th) is white, and that each upscaled pixel is one flat block."""
    with Image.open(path) as image:
        assert image.mode == "L", f"{path}: mode {image.mode}, expected 8-bit grey"
        assert image.size == grid_size(n, nrow, h, w), f"{path}: size {image.size}, expected {grid_size(n, nrow, h, w)}"
        pixels = np.asarray(image)
    scale = max(1, MIN_CELL // max(h, w))
    ch, cw = h * scale, w * scale
    background = np.ones(pixels.shape, bool)
    cells = []
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = PAD + r * (ch + PAD), PAD + c * (cw + PAD)
        block = pixels[top : top + ch, left : left + cw]
        background[top : top + ch, left : left + cw] = False
        coarse = block[::scale, ::scale]
        assert (np.repeat(np.repeat(coarse, scale, 0), scale, 1) == block).all(), f"{path}: cell {i} is not upscaled"
        cells.append(coarse)
    assert (pixels[background] == 255).all(), f"{path}: the frames and empty cells are not all white"
    return torch.from_numpy(np.stack(cells)[:, None].astype(np.float32) / 255)


def assert_shows(cells: torch.Tensor, images: torch.Tensor, what: str) -> None:
    """The cells read from a PNG are `images` (clamped to [0, 1]) up to 8-bit rounding."""
    expected = images.detach().float().cpu().clamp(0, 1)
    assert cells.shape == expected.shape, f"{what}: {tuple(cells.shape)} cells, expected {tuple(expected.shape)}"
    worst = (cells - expected).abs().max().item()
    assert worst <= QUANTUM, f"{what}: a pixel is off by {worst:.4f} (more than 8-bit rounding)"


class _ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[bytes] = []
        self.captions: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._caption: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            src = dict(attrs)["src"] or ""
            prefix = "data:image/png;base64,"
            assert src.startswith(prefix), f"an image is not an embedded PNG: {src[:60]!r}"
            self.images.append(base64.b64decode(src[len(prefix):], validate=True))
        elif tag == "figcaption":
            self._caption = []
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption" and self._caption is not None:
            self.captions.append("".join(self._caption))
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        for open_text in (self._caption, self._cell):
            if open_text is not None:
                open_text.append(data)


def read_report(path: str | Path) -> tuple[dict[str, bytes], list[list[list[str]]]]:
    """report.html's pictures, {file name from the caption: the embedded PNG's bytes}, and its tables (rows of
    cell texts, header row first)."""
    parser = _ReportParser()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    assert len(parser.images) == len(parser.captions), "a picture without its caption, or a caption without one"
    names = [caption.rsplit("(", 1)[-1].rstrip(")") for caption in parser.captions]
    return dict(zip(names, parser.images)), parser.tables


def assert_report_shows(run: Path, pictures: list[str], metrics: list[dict]) -> None:
    """run/report.html embeds exactly `pictures`, each the very bytes of the file in the run, and its metrics
    table is `metrics`, a row per epoch (floats to three places)."""
    embedded, tables = read_report(run / "report.html")
    assert list(embedded) == pictures, f"the report shows {list(embedded)}, expected {pictures}"
    for name, data in embedded.items():
        assert data == (run / name).read_bytes(), f"the report's {name} is not the run's {name}"
    table = next((t for t in tables if t and t[0][:1] == ["epoch"]), None)
    assert table is not None, "the report has no metrics table"
    header, rows = table[0], table[1:]
    assert set(header) == {k for m in metrics for k in m}, header
    expected = [[f"{m[k]:.3f}" if isinstance(m[k], float) else str(m[k]) for k in header] for m in metrics]
    assert rows == expected, f"the metrics table shows {rows}, metrics.jsonl holds {expected}"
