"""Loggers: callbacks that record each epoch's metrics, to metrics.jsonl (always) and, on request, to
TensorBoard, CSV, MLflow or Weights & Biases. A logger writes nothing until the run starts (`on_fit_start`), so building one
leaves the run directory as it is; one whose package is missing fails when it is built, naming the extra."""
from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch

from vaezoo.analysis.pictures import grid_array
from vaezoo.analysis.run_outputs import reconstruction_rows
from vaezoo.atomic import atomic_write_text
from vaezoo.checks import whole_number
from vaezoo.errors import RunDirError, VaezooError
from vaezoo.runs.directory import append_metrics, read_metrics
from vaezoo.training.callbacks import Callback

if TYPE_CHECKING:
    from vaezoo.training.trainer import Trainer

CSV_FILE = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"
MLFLOW_DIR = "mlruns"
MLFLOW_EXPERIMENT = "vaezoo"
WANDB_PROJECT = "vaezoo"


def _require(module: str, extra: str) -> ModuleType:
    """Import `module` of the optional extra `extra`; VaezooError naming the install when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise VaezooError(f"--log {extra} needs the {extra} package: pip install 'vaezoo[{extra}]'") from exc


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics that are numbers, but the epoch (the step they are logged at)."""
    return {k: float(v) for k, v in metrics.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}


class JSONLLogger(Callback):
    """Each epoch's metrics as a line of RUN/metrics.jsonl, the record every run keeps."""

    writes = True

    def __init__(self, run: Path) -> None:
        self.run = Path(run)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        append_metrics(self.run, metrics)


class CSVLogger(Callback):
    """Each epoch's metrics as a row of RUN/metrics.csv. A metric that appears later adds a column (the file
    is rewritten with it); at the start of a run the file is rewritten from metrics.jsonl, so that after a
    resume it holds the same epochs."""

    writes = True

    def __init__(self, run: Path) -> None:
        self.run = Path(run)
        self.path = self.run / CSV_FILE

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        """The header and rows of metrics.csv; RunDirError when something else lies under its name."""
        if not self.path.exists() and not self.path.is_symlink():
            return [], []
        try:
            if self.path.is_symlink() or not self.path.is_file():
                raise OSError("not a regular file")
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                header = list(reader.fieldnames or [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise foreign(self.path, "csv", exc) from None
        if header and header[0] != "epoch" or any(None in row for row in rows):  # None: a row longer than the header
            raise foreign(self.path, "csv", "its header does not start with epoch, or a row is longer than it")
        return header, rows

    def _rewrite(self, header: list[str], rows: list[dict[str, Any]]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, text.getvalue())

    def on_fit_start(self, trainer: Trainer) -> None:
        kept = read_metrics(self.run)
        header, _ = self._read()
        if kept or header:
            self._rewrite(_union(header, kept), kept)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        header, rows = self._read()
        if not header or not set(metrics) <= set(header):
            self._rewrite(_union(header, [*rows, metrics]), [*rows, metrics])
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=header, lineterminator="\n").writerow(metrics)
            f.flush()
            os.fsync(f.fileno())


def foreign(path: Path, logger: str, why: object) -> RunDirError:
    """The error for a file or folder at a logger's path that the logger cannot have written."""
    why = " ".join(str(why).split())
    why = why if len(why) <= 120 else why[:117] + "..."
    return RunDirError(f"{path} is not what --log {logger} writes ({why}); move it out of the run directory, or "
                       f"train without --log {logger}")


def _union(header: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """`header`, then the keys of `rows` it lacks in the order they first appear (the epoch first)."""
    keys = dict.fromkeys(header or ["epoch"])
    for row in rows:
        keys.update(dict.fromkeys(row))
    return list(keys)


class TensorBoardLogger(Callback):
    """Scalars of every metric per epoch (the step is the epoch) to RUN/tensorboard, and grids of samples and
    of held-out reconstructions (picture_grids) every `images_every` epochs and at the last."""

    writes = True

    def __init__(self, run: Path, images_every: int) -> None:
        self.summary_writer = _require("torch.utils.tensorboard", "tensorboard").SummaryWriter
        whole_number("log_images_every", images_every)
        self.dir = Path(run) / TENSORBOARD_DIR
        self.images_every = images_every
        self.writer: Any = None
        self.last_epoch: int | None = None
        self.drawn: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            raise foreign(self.dir, "tensorboard", "not a folder")
        # a resumed run redoes epochs from the one under way: TensorBoard drops what was logged for them before
        try:
            self.writer = self.summary_writer(str(self.dir), purge_step=trainer.state.epoch)
        except OSError as exc:
            raise foreign(self.dir, "tensorboard", exc) from None

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        epoch = metrics["epoch"]
        for key, value in _scalars(metrics).items():
            self.writer.add_scalar(key, value, epoch)
        if epoch % self.images_every == 0:
            self.draw(trainer, epoch)
        self.last_epoch = epoch
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.last_epoch is not None and self.drawn != self.last_epoch:
            self.draw(trainer, self.last_epoch)
        self.writer.close()

    def draw(self, trainer: Trainer, epoch: int) -> None:
        """Log the grids "samples" and "reconstructions" (see picture_grids) at `epoch`."""
        for tag, grid in picture_grids(trainer).items():
            self.writer.add_image(tag, grid, epoch, dataformats="HW" if grid.ndim == 2 else "HWC")
        self.drawn = epoch


@torch.no_grad()
def picture_grids(trainer: Trainer) -> dict[str, Any]:
    """The grids that loggers show of a model in training: "samples" (64 draws of the prior) and, when there is a
    held-out set, "reconstructions" (held-out inputs above them), as HxW or HxWxC uint8 arrays. They are drawn
    from a forked random state with a fixed seed: the same draws at every epoch show the model change, not the
    noise, and training's random stream is left as it would be without."""
    model = trainer.model
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    grids = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        grids["samples"] = grid_array(model.sample(64), None)
        if len(trainer.held_out):
            pairs, cols = reconstruction_rows(model, *trainer.held_out.first(32, device))
            grids["reconstructions"] = grid_array(pairs, cols)
    model.train(training)
    return grids


@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is set: set it while the store is made."""
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ["MLFLOW_ALLOW_FILE_STORE"]
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Settings as MLflow params: nested objects as dotted keys, values as strings (JSON but for strings)."""
    flat: dict[str, str] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value if isinstance(value, str) else json.dumps(value)
    return flat


class MLflowLogger(Callback):
    """The run's training settings as params and each epoch's metrics (the step is the epoch) in an MLflow
    file store at RUN/mlruns, experiment "vaezoo", run named after the run directory; report.html as an
    artifact at the end when there is one. A resumed run continues the same MLflow run; settings it changed
    are tagged `resumed.KEY`. Read it with `MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri RUN/mlruns`."""

    writes = True

    def __init__(self, run: Path) -> None:
        self.tracking = _require("mlflow.tracking", "mlflow")
        self.entities = _require("mlflow.entities", "mlflow")
        self.run = Path(run)
        self.client: Any = None
        self.run_id = ""

    def on_fit_start(self, trainer: Trainer) -> None:
        store = self.run / MLFLOW_DIR
        if store.is_symlink() or (store.exists() and not store.is_dir()):
            raise foreign(store, "mlflow", "not a folder")
        try:
            self._open(trainer)
        except VaezooError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow raises its own types, and OSError, for a store it cannot read
            raise foreign(store, "mlflow", exc) from None

    def _open(self, trainer: Trainer) -> None:
        """Open the store and this run's MLflow run (creating both the first time); log the settings."""
        with _file_store_allowed():  # the client keeps the store it made
            self.client = self.tracking.MlflowClient(tracking_uri=(self.run / MLFLOW_DIR).resolve().as_uri())
        experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(MLFLOW_EXPERIMENT)
        earlier = self.client.search_runs([experiment_id], max_results=1)  # the store is this run's alone
        if earlier:
            self.run_id, logged = earlier[0].info.run_id, earlier[0].data.params
            self._forget_from(experiment_id, trainer.state.epoch)
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id, logged = self.client.create_run(experiment_id, run_name=self.run.name).info.run_id, {}
        settings = _flatten(trainer.config.record())
        params = [self.entities.Param(k, v) for k, v in settings.items() if k not in logged]
        tags = [self.entities.RunTag(f"resumed.{k}", v) for k, v in settings.items() if logged.get(k, v) != v]
        for start in range(0, max(len(params), len(tags)), 100):  # MLflow takes up to 100 of each per batch
            self.client.log_batch(self.run_id, params=params[start : start + 100], tags=tags[start : start + 100])

    def _forget_from(self, experiment_id: str, epoch: int) -> None:
        """Drop what was logged for `epoch` and later: a resumed run redoes them (as metrics.jsonl drops them),
        so that no epoch is recorded twice. MLflow has no call for it; its file store keeps each metric's history
        as lines "TIMESTAMP VALUE STEP" in RUN/mlruns/EXPERIMENT/RUN_ID/metrics/NAME, rewritten here atomically."""
        folder = self.run / MLFLOW_DIR / experiment_id / self.run_id / "metrics"
        if not folder.is_dir():
            return
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            text = path.read_text(encoding="utf-8")
            lines = text.splitlines()
            if lines and not text.endswith("\n"):  # a line cut off by a failed write: it is redone
                lines.pop()
            fields = [line.split() for line in lines]
            if not all(len(f) == 3 and f[2].lstrip("-").isdigit() for f in fields):
                raise RunDirError(f"{path} is not an MLflow metric history (TIMESTAMP VALUE STEP per line)")
            kept = [line for line, f in zip(lines, fields) if int(f[2]) < epoch]
            if kept != text.splitlines():
                atomic_write_text(path, "".join(line + "\n" for line in kept))

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            self.entities.Metric(k, v, now, metrics["epoch"]) for k, v in _scalars(metrics).items()
        ])

    def on_fit_end(self, trainer: Trainer) -> None:
        report = self.run / "report.html"
        if report.exists():
            self.client.log_artifact(self.run_id, str(report))
        self.client.set_terminated(self.run_id)


class WandbLogger(Callback):
    """Weights & Biases: the training settings as the run's config, each epoch's metrics against the epoch, and
    the grids of picture_grids every `images_every` epochs and at the last, in RUN/wandb. Offline unless
    $WANDB_MODE says otherwise: nothing leaves the machine until `wandb sync RUN/wandb/offline-run-*`. Each
    process that trains (a first run, each resume) is one W&B run named and grouped after the run directory;
    the epoch axis of a resumed one starts where it resumed."""

    writes = True

    def __init__(self, run: Path, images_every: int) -> None:
        self.wandb = _require("wandb", "wandb")
        if images_every < 1:
            raise VaezooError(f"images_every must be a positive number of epochs, got {images_every}")
        self.run = Path(run)
        self.images_every = images_every
        self.session: Any = None
        self.last_epoch: int | None = None
        self.drawn: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        folder = self.run / "wandb"
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise foreign(folder, "wandb", "not a folder")
        settings = self.wandb.Settings(console="off", silent=True, disable_git=True, save_code=False,
                                       x_disable_stats=True, x_save_requirements=False)
        try:
            self.session = self.wandb.init(
                mode=os.environ.get("WANDB_MODE", "offline"), dir=str(self.run),
                project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT), name=self.run.name, group=self.run.name,
                job_type="resume" if trainer.state.epoch > 1 else "train", config=trainer.config.record(),
                settings=settings, reinit="create_new")
        except OSError as exc:
            raise foreign(folder, "wandb", exc) from None
        self.session.define_metric("epoch")
        self.session.define_metric("*", step_metric="epoch")

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        epoch = metrics["epoch"]
        record: dict[str, Any] = {**_scalars(metrics), "epoch": epoch}
        if epoch % self.images_every == 0:
            record.update(self._pictures(trainer, epoch))
        self.session.log(record)
        self.last_epoch = epoch

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.last_epoch is not None and self.drawn != self.last_epoch:
            self.session.log({**self._pictures(trainer, self.last_epoch), "epoch": self.last_epoch})
        self.session.finish()

    def _pictures(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
        self.drawn = epoch
        return {tag: self.wandb.Image(grid) for tag, grid in picture_grids(trainer).items()}


#: the loggers that --log names, besides metrics.jsonl
LOGGERS = ("tensorboard", "csv", "mlflow", "wandb")


def build_loggers(names: list[str], run: Path, images_every: int) -> list[Callback]:
    """metrics.jsonl's logger, then one of each logger named (tensorboard, csv, mlflow, wandb) into the run `run`."""
    loggers: list[Callback] = [JSONLLogger(run)]
    for name in dict.fromkeys(names):
        if name == "tensorboard":
            loggers.append(TensorBoardLogger(run, images_every))
        elif name == "csv":
            loggers.append(CSVLogger(run))
        elif name == "mlflow":
            loggers.append(MLflowLogger(run))
        elif name == "wandb":
            loggers.append(WandbLogger(run, images_every))
        else:
            raise VaezooError(f"unknown logger {name!r}: --log takes {', '.join(LOGGERS)}")
    return loggers
