"""Loggers: metrics.jsonl, CSV, TensorBoard and MLflow record each epoch's metrics, read back from their files."""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaezoo
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set
from vaezoo.data.splits import Rows, Splits
from vaezoo.errors import VaezooError
from vaezoo.runs.directory import read_metrics, rewrite_metrics
from vaezoo.training.loggers import (
    CSVLogger,
    JSONLLogger,
    MLflowLogger,
    TensorBoardLogger,
    WandbLogger,
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
    ten = Splits(data.name, data.train, Rows(data.test, np.arange(10)))  # ten held-out images, grey
    return SimpleNamespace(
        model=model, held_out=held_out_set(ten, model, "none"),
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
    with pytest.raises(VaezooError, match="unknown logger 'neptune': --log takes tensorboard, csv, mlflow, wandb"):
        build_loggers(["neptune"], tmp_path, 5)


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


def test_a_missing_tensorboard_mlflow_or_wandb_names_the_extra(tmp_path, monkeypatch):
    for module in ("torch.utils.tensorboard", "mlflow.tracking", "mlflow.entities"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(VaezooError, match=r"^--log wandb needs the wandb package: pip install 'vaezoo\[wandb\]'$"):
        build_loggers(["wandb"], tmp_path, 5)
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


def mlflow_history(run: Path, key: str, monkeypatch) -> list[tuple[int, float]]:
    tracking = pytest.importorskip("mlflow.tracking")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = tracking.MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    [found] = client.search_runs([client.get_experiment_by_name("vaezoo").experiment_id])
    return [(m.step, m.value) for m in client.get_metric_history(found.info.run_id, key)]


def test_mlflow_drops_the_epochs_a_resumed_run_redoes(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    fit([MLflowLogger(tmp_path)], fake_trainer(), EPOCHS)
    [history] = (tmp_path / "mlruns").glob("*/*/metrics/val_elbo")
    with open(history, "a") as f:
        f.write("1796454188003 -3")  # a line cut off by a failed write
    redone = {**EPOCHS[1], "val_elbo": -41.0}
    fit([MLflowLogger(tmp_path)], fake_trainer(epoch=2), [redone])
    assert mlflow_history(tmp_path, "val_elbo", monkeypatch) == [(1, -48.125), (2, -41.0)]


def test_mlflow_after_a_failed_checkpoint_and_a_resume_records_each_epoch_once(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from vaezoo.runs import checkpoint as ckpt
    from vaezoo.training.trainer import TrainConfig, resume, train

    real, written = ckpt.atomic_write, []

    def second_fails(path, write):
        written.append(path)
        if len(written) == 2:
            raise vaezoo.errors.RunDirError(f"cannot write {path}: No space left on device")
        return real(path, write)

    run = tmp_path / "run"
    config = TrainConfig(variant="vae-mlp", dataset="digits", out=str(run), epochs=3, limit=200, log=["mlflow"],
                         overrides={"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]})
    with monkeypatch.context() as patch:
        patch.setattr(ckpt, "atomic_write", second_fails)
        with pytest.raises(vaezoo.errors.RunDirError, match="No space left"):
            train(config, progress=False)
    resume(str(run), progress=False)
    metrics = read_metrics(run)
    assert mlflow_history(run, "val_elbo", monkeypatch) == [(m["epoch"], m["val_elbo"]) for m in metrics]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]


@pytest.mark.parametrize(("logger", "plant", "message"), [
    ("csv", lambda run: (run / "metrics.csv").mkdir(), "not a regular file"),
    ("csv", lambda run: (run / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage"), "codec can't decode"),
    ("csv", lambda run: (run / "metrics.csv").write_text("name,age\nx,3\n"), "header does not start with epoch"),
    ("tensorboard", lambda run: (run / "tensorboard").write_text("x"), "not a folder"),
    ("mlflow", lambda run: (run / "mlruns").write_text("x"), "not a folder"),
    ("wandb", lambda run: (run / "wandb").write_text("x"), "not a folder"),
    ("mlflow", lambda run: ((run / "mlruns" / "0").mkdir(parents=True), (run / "mlruns" / "0" / "meta.yaml")
                            .write_text("{{{: not yaml")), "is not what --log mlflow writes"),
])
def test_a_foreign_file_at_a_loggers_path_is_one_error(tmp_path, logger, plant, message):
    pytest.importorskip({"csv": "csv", "tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}[logger])
    plant(tmp_path)
    [built] = build_loggers([logger], tmp_path, images_every=1)[1:]
    with pytest.raises(vaezoo.errors.RunDirError, match=f"is not what --log {logger} writes.*{message}|{message}"):
        built.on_fit_start(fake_trainer())


def wandb_records(run: Path) -> list[tuple[str, object]]:
    """What --log wandb wrote offline into RUN/wandb: (kind, record) for each record of each offline run's .wandb
    file, in order. The file is W&B's transaction log (a 7-byte header ":W&B", magic, version; then 32 KiB
    blocks of chunks, each with a CRC-32, a length and a type: whole, first, middle or last) of protobuf
    Records; wandb no longer ships a reader of its own, so the test reads the format itself."""
    import struct
    import zlib

    wandb = pytest.importorskip("wandb")
    proto = pytest.importorskip("wandb.proto.wandb_internal_pb2")
    wandb.teardown()  # finish() returns before wandb's service process has written the file; this waits for it
    found = []
    for path in sorted(run.glob("wandb/offline-run-*/run-*.wandb")):
        data = path.read_bytes()
        assert data[:4] == b":W&B"
        position, pending = 7, b""
        while position + 7 <= len(data):
            room = 32768 - position % 32768
            if room < 7:  # a block's tail too short for a chunk header is padding
                position += room
                continue
            crc, length, kind = struct.unpack("<IHB", data[position:position + 7])
            if kind == 0:
                break
            chunk = data[position + 7:position + 7 + length]
            assert zlib.crc32(bytes([kind]) + chunk) == crc  # CRC-32 of the type byte and the chunk
            pending += chunk
            position += 7 + length
            if kind in (1, 4):  # a whole record, or its last chunk
                record = proto.Record()
                record.ParseFromString(pending)
                found.append((record.WhichOneof("record_type"), record))
                pending = b""
    return found


def wandb_history(run: Path) -> list[dict[str, object]]:
    """The rows that --log wandb logged, a picture as the object of its fields (width, height, path...)."""
    import json

    rows = []
    for kind, record in wandb_records(run):
        if kind != "history":
            continue
        row: dict[str, object] = {}
        for item in record.history.item:
            keys = [item.key] if item.key else list(item.nested_key)
            value = json.loads(item.value_json)
            if len(keys) == 1:
                row[keys[0]] = value
            else:
                row.setdefault(keys[0], {})["/".join(keys[1:])] = value
        rows.append(row)
    return rows


def test_wandb_offline_writes_the_settings_metrics_and_pictures_into_the_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import json

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "my-run"
    run.mkdir()
    trainer = fake_trainer(epochs=3)
    rng = torch.get_rng_state()
    fit([WandbLogger(run, images_every=2)], trainer, EPOCHS)
    assert torch.equal(torch.get_rng_state(), rng)  # the pictures leave training's random stream as it was
    [offline] = run.glob("wandb/offline-run-*")  # everything under the run directory, nothing synced
    records = wandb_records(run)
    [(_, started)] = [(k, r) for k, r in records if k == "run"]
    assert started.run.display_name == "my-run" and started.run.run_group == "my-run"
    assert started.run.project == "vaezoo" and started.run.job_type == "train"
    config = {u.key: json.loads(u.value_json) for u in started.run.config.update}
    assert config["epochs"] == 3 and config["overrides"] == {"beta": 4} and config["lr"] == 0.001
    history = wandb_history(run)
    scalars = [{k: v for k, v in h.items() if k in EPOCHS[0]} for h in history if "train_loss" in h]
    assert scalars == EPOCHS
    pictured = [(h["epoch"], h["samples"]["height"], h["reconstructions"]["height"]) for h in history
                if "samples" in h]
    assert pictured == [(2, 8 * 34 + 2, 2 * 34 + 2), (3, 8 * 34 + 2, 2 * 34 + 2)]  # every 2nd epoch, and the last
    images = sorted(p.name for p in offline.glob("files/media/images/*.png"))
    assert len(images) == 4


def test_wandb_resumed_run_is_a_second_run_of_the_group_from_the_resumed_epoch(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    fit([WandbLogger(tmp_path, images_every=5)], fake_trainer(), EPOCHS[:1])
    fit([WandbLogger(tmp_path, images_every=5)], fake_trainer(epoch=2), EPOCHS[1:2])
    runs = sorted(tmp_path.glob("wandb/offline-run-*"))
    assert len(runs) == 2
    kinds = [r.run.job_type for folder in runs for k, r in wandb_records(folder.parent.parent) if k == "run"]
    assert sorted(set(kinds)) == ["resume", "train"]
