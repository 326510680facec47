"""Loggers: metrics.jsonl, CSV, TensorBoard and MLflow record each epoch's metrics, read back from their files."""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import vaezoo
from vaezoo.data._old_dataset import as_splits  # interim: until load_dataset returns Splits
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set
from vaezoo.errors import VaezooError
from vaezoo.runs.directory import read_metrics, rewrite_metrics
from vaezoo.training.loggers import (
    CSVLogger,
    JSONLLogger,
    MLflowLogger,
    TensorBoardLogger,
    build_loggers,
)

EPOCHS = [
    {"epoch": 1, "train_loss": 50.25, "val_elbo": -48.125, "skipped_steps": 0},
    {"epoch": 2, "train_loss": 40.5, "val_elbo": -39.0625, "skipped_steps": 1},
    {"epoch": 3, "train_loss": 35.75, "val_elbo": -36.5, "skipped_steps": 1},
]


def fake_trainer(variant: str = "vae-mlp", epochs: int = 3, epoch: int = 1, **settings) -> SimpleNamespace:
    """What the loggers use of a Trainer: a small real VAE, digit images held out, progress and settings."""
    torch.manual_seed(0)
    model = vaezoo.create_model(variant, input_shape=(1, 8, 8), latent_dim=2)
    data = load_dataset("digits", limit=40)
    record = {"epochs": epochs, "lr": 0.001, "overrides": {"beta": 4}, "log": ["mlflow"], "data_dir": None,
              **settings}
    return SimpleNamespace(
        model=model, held_out=held_out_set(as_splits(data), model).head(10),
        state=SimpleNamespace(epoch=epoch), config=SimpleNamespace(epochs=epochs, record=lambda: record),
    )


def fit(loggers: list, trainer: SimpleNamespace, epochs: list[dict]) -> None:
    """Drive the loggers as Trainer.fit does."""
    for logger in loggers:
        logger.on_fit_start(trainer)
    for metrics in epochs:
        for logger in loggers:
            logger.on_epoch_end(trainer, metrics)
        trainer.state.epoch = metrics["epoch"] + 1
    for logger in loggers:
        logger.on_fit_end(trainer)


def read_csv(run: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def test_build_loggers_puts_jsonl_first_once_each_and_refuses_unknown_names(tmp_path):
    loggers = build_loggers(["csv", "csv"], tmp_path, 5)
    assert [type(logger) for logger in loggers] == [JSONLLogger, CSVLogger]
    assert all(logger.writes for logger in loggers)
    assert list(tmp_path.iterdir()) == []  # building writes nothing into the run directory
    with pytest.raises(VaezooError, match="unknown logger 'wandb': --log takes tensorboard, csv, mlflow"):
        build_loggers(["wandb"], tmp_path, 5)


def test_jsonl_and_csv_hold_the_metrics_passed(tmp_path):
    fit(build_loggers(["csv"], tmp_path, 5), fake_trainer(), EPOCHS)
    assert read_metrics(tmp_path) == EPOCHS
    header, rows = read_csv(tmp_path)
    assert header == list(EPOCHS[0])
    assert [{k: float(v) for k, v in row.items()} for row in rows] == EPOCHS


def test_csv_adds_a_later_metric_as_a_column_and_matches_jsonl_after_a_resume(tmp_path):
    later = {**EPOCHS[1], "val_bits_per_dim": 0.5}
    fit(build_loggers(["csv"], tmp_path, 5), fake_trainer(), [EPOCHS[0], later, EPOCHS[2]])
    header, rows = read_csv(tmp_path)
    assert header == [*EPOCHS[0], "val_bits_per_dim"]
    assert [row["val_bits_per_dim"] for row in rows] == ["", "0.5", ""]
    assert [float(row["val_elbo"]) for row in rows] == [m["val_elbo"] for m in EPOCHS]

    rewrite_metrics(tmp_path, read_metrics(tmp_path)[:1])  # a resume that redoes epochs 2 and 3
    redone = {**EPOCHS[1], "val_elbo": -41.0}
    fit(build_loggers(["csv"], tmp_path, 5), fake_trainer(epoch=2), [redone])
    header, rows = read_csv(tmp_path)
    assert header == [*EPOCHS[0], "val_bits_per_dim"]  # the columns keep their order
    assert [{k: float(v) for k, v in row.items() if v} for row in rows] == [EPOCHS[0], redone]


def test_a_missing_tensorboard_or_mlflow_names_the_extra(tmp_path, monkeypatch):
    for module in ("torch.utils.tensorboard", "mlflow.tracking", "mlflow.entities"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(VaezooError, match=r"^--log tensorboard needs the tensorboard package: "
                                          r"pip install 'vaezoo\[tensorboard\]'$"):
        build_loggers(["tensorboard"], tmp_path, 5)
    with pytest.raises(VaezooError, match=r"^--log mlflow needs the mlflow package: pip install 'vaezoo\[mlflow\]'$"):
        build_loggers(["mlflow"], tmp_path, 5)


def events(run: Path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    found = accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    return found.Reload()


@pytest.mark.parametrize("variant", ["vae-mlp", "cvae-mlp"])
def test_tensorboard_has_the_scalars_per_epoch_and_pictures_every_n_epochs_and_at_the_last(tmp_path, variant):
    pytest.importorskip("tensorboard")
    trainer = fake_trainer(variant)
    logger = TensorBoardLogger(tmp_path, images_every=2)
    trainer.model.train()
    rng = torch.get_rng_state()
    fit([logger], trainer, EPOCHS)
    assert torch.equal(torch.get_rng_state(), rng)  # the pictures leave training's random stream as it was
    assert trainer.model.training
    found = events(tmp_path)
    assert set(found.Tags()["scalars"]) == {"train_loss", "val_elbo", "skipped_steps"}
    for key in ("train_loss", "val_elbo", "skipped_steps"):
        assert [(s.step, s.value) for s in found.Scalars(key)] == [(m["epoch"], m[key]) for m in EPOCHS]
    for tag, (height, width) in {"samples": (8 * 34 + 2,) * 2, "reconstructions": (2 * 34 + 2, 8 * 34 + 2)}.items():
        pictures = found.Images(tag)
        assert [p.step for p in pictures] == [2, 3]  # every 2nd epoch, and the last
        assert (pictures[0].height, pictures[0].width) == (height, width)


def test_tensorboard_drops_the_epochs_a_resumed_run_redoes(tmp_path):
    pytest.importorskip("tensorboard")
    fit([TensorBoardLogger(tmp_path, images_every=5)], fake_trainer(), EPOCHS)
    redone = {**EPOCHS[1], "val_elbo": -41.0}
    fit([TensorBoardLogger(tmp_path, images_every=5)], fake_trainer(epoch=2), [redone])
    found = events(tmp_path)
    assert [(s.step, s.value) for s in found.Scalars("val_elbo")] == [(1, -48.125), (2, -41.0)]
    assert [p.step for p in found.Images("samples")] == [2]


def test_mlflow_file_store_has_the_params_metrics_and_report(tmp_path, monkeypatch):
    tracking = pytest.importorskip("mlflow.tracking")
    run = tmp_path / "my-run"
    run.mkdir()
    (run / "report.html").write_text("<html></html>")
    fit([MLflowLogger(run)], fake_trainer(epochs=2), EPOCHS[:2])
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # no setting left behind
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = tracking.MlflowClient(tracking_uri=(run / "mlruns").as_uri())
    [found] = client.search_runs([client.get_experiment_by_name("vaezoo").experiment_id])
    assert found.info.run_name == "my-run" and found.info.status == "FINISHED"
    assert found.data.params == {"epochs": "2", "lr": "0.001", "overrides.beta": "4", "log": '["mlflow"]',
                                 "data_dir": "null"}
    for key in ("train_loss", "val_elbo", "skipped_steps"):
        history = client.get_metric_history(found.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [(m["epoch"], m[key]) for m in EPOCHS[:2]]
    assert [a.path for a in client.list_artifacts(found.info.run_id)] == ["report.html"]

    fit([MLflowLogger(run)], fake_trainer(epochs=3, epoch=3), EPOCHS[2:])  # resumed for one more epoch
    [again] = client.search_runs([found.info.experiment_id])
    assert again.info.run_id == found.info.run_id and again.data.params["epochs"] == "2"
    assert again.data.tags["resumed.epochs"] == "3"
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val_elbo")] == [1, 2, 3]
