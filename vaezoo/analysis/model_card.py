"""The model card (README.md) that `vaezoo push` publishes with a run: what the model is (its variant, its parts
and the plugins that gave them), what it was trained on and how, what it scored, its pictures, and how to load it."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from vaezoo.analysis.report import EVALUATION, PICTURES
from vaezoo.runs.directory import HAND_BUILT, IN_MEMORY, read_config, read_metrics

PARTS = ("encoder", "posterior", "decoder", "prior", "likelihood", "objective")


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "non-finite"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(text: Any) -> str:
    """A value for a Markdown table cell: pipes escaped, JSON for anything but strings and numbers."""
    shown = text if isinstance(text, str) else _number(text) if isinstance(text, (int, float)) else json.dumps(text)
    return shown.replace("|", "\\|").replace("\n", " ")


def _provider(record: dict[str, Any]) -> str:
    return f"`{record['name']}` from {record['distribution']} {record['version']}"


def _model_section(config: dict[str, Any]) -> list[str]:
    shape = "x".join(str(s) for s in config["input_shape"])
    lines = ["## Model", "", "| | |", "|---|---|"]
    identity = config.get("identity", {})
    if config["variant"] == HAND_BUILT:
        lines.append(f"| variant | built by hand from parts (recorded in {config.get('architecture')}) |")
    else:
        lines.append(f"| variant | {_provider(identity['variant']) if 'variant' in identity else config['variant']} |")
    lines += [f"| input shape | {shape} |", f"| latent dimensions | {config['latent_dim']} |"]
    if config.get("num_classes"):
        lines.append(f"| classes (conditional) | {config['num_classes']} |")
    for key, value in sorted(config.get("overrides", {}).items()):
        lines.append(f"| override `{_cell(key)}` | {_cell(value)} |")
    parts = [(kind, identity[kind]) for kind in PARTS if kind in identity]
    if parts:
        lines += ["", "| part | name | plugin's distribution |", "|---|---|---|"]
        lines += [f"| {kind} | `{r['name']}` | {r['distribution']} {r['version']} |" for kind, r in parts]
    needed = sorted({(r["distribution"], r["version"]) for r in identity.values() if r["distribution"] != "vaezoo"})
    if needed:
        lines += ["", "Loading it needs these plugin distributions installed: "
                  + ", ".join(f"`{d}=={v}`" for d, v in needed) + "."]
    return lines


def _data_section(config: dict[str, Any]) -> list[str]:
    train = config["train"]
    if config["dataset"] == IN_MEMORY:
        return ["## Data", "", "Data held in memory, given to `vaezoo.fit` (not part of the run)."]
    dataset = config.get("dataset_identity")
    named = _provider(dataset) if dataset else f"`{config['dataset']}`"
    lines = ["## Data", "", f"Dataset {named}"
             + (f", the first {train['limit']} training examples of a fixed shuffle" if train.get("limit") else "")
             + f"; binarization `{train.get('binarize', 'auto')}`."]
    options = train.get("data_options") or {}
    if options:
        lines.append("Loader options: " + ", ".join(f"`{k}={_cell(v)}`" for k, v in sorted(options.items())) + ".")
    return lines


def _training_section(config: dict[str, Any], command: str | None) -> list[str]:
    train = config["train"]
    lines = ["## Training", ""]
    if command:
        lines += ["The command that made it (RUN_DIR and DATA_DIR stand for the paths used):", "", "```bash",
                  command, "```", ""]
    settings = ("epochs", "batch_size", "lr", "optimizer", "schedule", "seed")
    lines.append("Settings: " + ", ".join(f"{key.replace('_', ' ')} {_number(train[key])}" for key in settings if key in train)
                 + ".")
    versions = config.get("versions", {})
    if versions:
        lines += ["", "Trained with " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + "."]
    return lines


def _metrics_section(run: Path) -> list[str]:
    metrics = read_metrics(run)
    lines = ["## Metrics", ""]
    if not metrics:
        return [*lines, "No epochs recorded."]
    last = metrics[-1]
    lines += [f"After epoch {last['epoch']}, on the held-out set (nats per example; `val_elbo` is the ELBO):", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {_number(value)} |" for key, value in sorted(last.items()) if key != "epoch"]
    path = run / EVALUATION
    if path.is_file():
        try:
            evaluation = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            evaluation = None
        if isinstance(evaluation, dict):
            lines += ["", f"`vaezoo eval` recorded ({EVALUATION}):", "", "| score | value |", "|---|---|"]
            lines += [f"| {'.'.join(key)} | {_number(value)} |" for key, value in _leaves(evaluation)]
    return lines


def _leaves(record: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """The numbers of a nested record, with the keys that lead to each."""
    found = []
    for key, value in record.items():
        if isinstance(value, dict):
            found += _leaves(value, (*prefix, str(key)))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append(((*prefix, str(key)), value))
    return found


def _pictures_section(run: Path) -> list[str]:
    shown = [(name, caption) for name, caption in PICTURES if (run / name).is_file()]
    if not shown:
        return []
    lines = ["## Pictures", ""]
    for name, caption in shown:
        lines += [f"{caption}:", "", f"![{caption}]({name})", ""]
    return lines[:-1]


def model_card(run: str | os.PathLike[str], repo_id: str, command: str | None) -> str:
    """README.md for the run directory `run` published as the Hub repository `repo_id`; `command` is the
    `vaezoo train` line that made it (None when it was made from Python)."""
    run = Path(run)
    config = read_config(run)
    variant = config["variant"].partition(":")[2] or config["variant"]
    dataset = config["dataset"].partition(":")[2] or config["dataset"]
    front = ["---", "library_name: vaezoo", "tags:", "- vaezoo", "- vae", "- pytorch"]
    front += [f"- {variant}"] if variant != HAND_BUILT else []
    front += ["---", ""]
    use = [
        f"# {repo_id}", "",
        f"A variational autoencoder, `{variant}` trained on `{dataset}`, published from a "
        "vaezoo run directory with `vaezoo push`.", "",
        "## Use it", "", "```python", "import vaezoo", "", f'model = vaezoo.load_model("hf://{repo_id}")',
        "images = model.sample(16)  # decoded draws of the prior", "```", "", "```bash",
        f"vaezoo sample hf://{repo_id} --out samples.png", "```", "",
        "vaezoo downloads only the run's safetensors and JSON records (never a pickle) into the Hugging Face "
        "cache, and loads it from there offline afterwards (`HF_HUB_OFFLINE=1`).",
    ]
    sections = [front + use, _model_section(config), _data_section(config), _training_section(config, command),
                _metrics_section(run), _pictures_section(run)]
    return "\n".join("\n".join(section) + "\n" for section in sections if section)
