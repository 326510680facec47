"""report.html: a self-contained page on one run — config, metrics, curves and pictures — for any browser."""
from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path

from vaezoo.atomic import atomic_write_text
from vaezoo.runs.directory import open_saved_run, read_metrics

REPORT = "report.html"
PICTURES = (
    ("curves.png", "Training curves"),
    ("samples.png", "Samples from the prior"),
    ("reconstructions.png", "Reconstructions (inputs above, reconstructions below)"),
    ("interpolation.png", "Interpolations between held-out inputs"),
    ("traversal.png", "Latent traversals (one row per latent dimension)"),
    ("traversal_factors.png", "Latent traversals labelled by the factor each dimension captures best "
     "(normalized mutual information in brackets)"),
    ("reconstructions_full.png", "Held-out images (top) and their reconstructions, at full size (vaezoo eval "
     "--reconstruction)"),
)
FULL_SIZE = ("reconstructions_full.png",)  # shown one image pixel per screen pixel
EVALUATION = "evaluation.json"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td.key { text-align: left; font-family: monospace; }
figure { margin: 1rem 0 2rem; } img { max-width: 100%; border: 1px solid #ddd; }
img.grid { image-rendering: pixelated; width: min(100%, 32rem); }
img.full { max-width: none; width: auto; }
"""


def _embedded(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _picture_class(name: str) -> str:
    """How a picture is shown: curves as a plot, full-size pictures unscaled, grids enlarged pixel by pixel."""
    return "plot" if name == "curves.png" else "full" if name in FULL_SIZE else "grid"


def _objective_note(config: dict) -> str:
    """What the run's objective chose beyond its options (which network its perceptual distance ran on)."""
    said = config.get("objective")
    if not isinstance(said, dict) or not said.get("perceptual"):
        return ""
    return f"<p>Perceptual distance in training: {html.escape(str(said['perceptual']))}.</p>"


def _config_rows(config: dict) -> str:
    rows = []
    for key in sorted(config):
        value = config[key]
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
        rows.append(f'<tr><td class="key">{html.escape(key)}</td><td class="key">{html.escape(text)}</td></tr>')
    return "\n".join(rows)


def _metrics_table(metrics: list[dict]) -> str:
    if not metrics:
        return "<p>No epochs recorded.</p>"
    columns = list(dict.fromkeys(k for m in metrics for k in m))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for m in metrics:
        cells = "".join(
            f"<td>{_number(m.get(c, ''), '.3f')}</td>" for c in columns
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "</table>"


def _flat(prefix: str, value: object) -> list[tuple[str, object]]:
    """Nested dicts as (dotted key, value) pairs; lists of dicts are left out (they have their own picture)."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flat(f"{prefix}.{k}" if prefix else k, v)]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return []
    return [(prefix, value)]


def _from_epoch(section: object, trained: int | None) -> str:
    """Which weights an evaluation measured, and whether the run has trained further since."""
    epoch = section.get("epoch") if isinstance(section, dict) else None
    if not (isinstance(epoch, int) and not isinstance(epoch, bool)):
        return "<p>Measured on weights of an epoch not recorded (an older vaezoo): run vaezoo eval again.</p>"
    if trained is not None and epoch < trained:
        return (f"<p><b>Measured on the weights of epoch {epoch}; the run has trained to epoch {trained} since, so "
                "these figures are not this model's:</b> run vaezoo eval again.</p>")
    return f"<p>Measured on the weights of epoch {epoch}.</p>"


def _evaluation_section(run: Path, trained: int | None) -> str:
    """The tables of `vaezoo eval --disentanglement --sample-quality` results, when the run has them, each saying
    the epoch of the weights it measured."""
    path = run / EVALUATION
    if not path.is_file():
        return ""
    try:
        evaluation = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "<h2>Evaluation</h2><p>evaluation.json is damaged; run vaezoo eval again.</p>"
    if not isinstance(evaluation, dict):
        return "<h2>Evaluation</h2><p>evaluation.json is not a vaezoo evaluation; run vaezoo eval again.</p>"
    parts = []
    for name, section in evaluation.items():
        rows = "".join(
            f'<tr><td class="key">{html.escape(k)}</td><td>{_number(v, ".4f")}</td></tr>' if isinstance(v, float)
            else f'<tr><td class="key">{html.escape(k)}</td><td class="key">{html.escape(str(v))}</td></tr>'
            for k, v in _flat(name, section) if k != f"{name}.epoch"
        )
        note = ("<p>Sample quality is measured on features of a classifier vaezoo trained on this dataset (shipped "
                "with vaezoo, or trained on this machine: features.source and features.weights_sha256 say which): "
                "figures compare models within vaezoo, not with Inception-based FID.</p>" if name == "sample_quality" else
                "<p>PSNR, SSIM and MS-SSIM average the held-out images' own values; rFID compares the reconstructions "
                "with the same held-out images on features of a classifier vaezoo trained on this dataset (shipped "
                "or trained on this machine: features.source says which; comparable within vaezoo only).</p>"
                if name == "reconstruction" else "")
        title = html.escape(name.replace("_", " ").capitalize())
        parts.append(f"<h3>{title}</h3>{_from_epoch(section, trained)}{note}<table>{rows}</table>")
    return "<h2>Evaluation (vaezoo eval)</h2>" + "".join(parts)


def _number(value: object, spec: str = ".2f") -> str:
    """A metric as text: floats by `spec` ("non-finite" for NaN or infinity), anything else (from a hand-edited
    file) escaped as it is."""
    if isinstance(value, float):
        return format(value, spec) if math.isfinite(value) else "non-finite"
    return html.escape(str(value))


def _headline(last: dict) -> str:
    if "val_elbo" not in last:
        return (f"<p>Training loss after epoch {_number(last.get('epoch'))}: <b>{_number(last.get('train_loss'))}</b> "
                "nats per example (no held-out set).</p>")
    return (f"<p>Held-out ELBO after epoch {_number(last.get('epoch'))}: <b>{_number(last.get('val_elbo'))}</b> "
            "nats per example.</p>")


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write report.html into the run directory (a path, or a SavedRun whose config is not read again), embedding
    every picture there so the page stands alone."""
    run = Path(run_dir)
    config = open_saved_run(run_dir).config
    metrics = read_metrics(run)
    title = f"vaezoo run: {config.get('variant', '?')} on {config.get('dataset', '?')}"
    figures = [
        f'<figure><img class="{_picture_class(name)}" alt="{html.escape(caption)}" '
        f'src="{_embedded(run / name)}">'
        f"<figcaption>{html.escape(caption)} ({name})</figcaption></figure>"
        for name, caption in PICTURES
        if (run / name).is_file()
    ]
    last = metrics[-1] if metrics else {}
    summary = _headline(last) if last else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{summary}
{_objective_note(config)}
{_evaluation_section(run, last.get('epoch') if isinstance(last.get('epoch'), int) else None)}
<h2>Pictures</h2>
{''.join(figures)}
<h2>Metrics per epoch</h2>
{_metrics_table(metrics)}
<h2>Configuration</h2>
<table>{_config_rows(config)}</table>
</body></html>
"""
    path = run / REPORT
    atomic_write_text(path, page)
    return path
