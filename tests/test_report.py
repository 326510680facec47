"""report.html: self-contained, every picture loads in a real browser, bad pictures are caught."""
from __future__ import annotations

import json

import pytest
import torch
from browser import chromium, image_status
from grids import assert_report_shows

from vaezoo.analysis import pictures as viz
from vaezoo.analysis.report import PICTURES, write_report
from vaezoo.runs.directory import append_metrics, read_metrics, write_config

needs_chromium = pytest.mark.skipif(chromium() is None, reason="needs Chromium (apt-get install chromium)")


def make_run(tmp_path):
    train = {"variant": "vae-mlp", "dataset": "digits", "out": str(tmp_path)}
    write_config(tmp_path, {"variant": "vae-mlp", "dataset": "digits", "overrides": {"beta": 2},
                            "input_shape": [1, 8, 8], "latent_dim": 4, "train": train})
    metrics = [{"epoch": e, "train_loss": 40.0 - e, "val_elbo": -41.0 + e, "seconds": 0.1} for e in (1, 2, 3)]
    for m in metrics:
        append_metrics(tmp_path, m)
    viz.save_curves(metrics, tmp_path / "curves.png")
    for name, _ in PICTURES[1:]:
        viz.save_grid(torch.rand(16, 1, 8, 8), tmp_path / name)
    return tmp_path


def test_report_holds_config_metrics_and_every_picture(tmp_path):
    run = make_run(tmp_path)
    page = write_report(run).read_text()
    assert "vae-mlp on digits" in page and "-38.00" in page
    assert_report_shows(run, [name for name, _ in PICTURES], read_metrics(run))
    assert json.dumps({"beta": 2}) in page.replace("&quot;", '"')
    assert "src=\"http" not in page and "src=\"/" not in page  # nothing to fetch: readable offline


def test_a_non_finite_held_out_elbo_is_said_so_not_printed_as_nan(tmp_path):
    run = make_run(tmp_path)
    append_metrics(run, {"epoch": 4, "train_loss": 30.0, "val_elbo": float("nan"), "seconds": 0.1})
    page = write_report(run).read_text()
    assert "<b>non-finite</b>" in page and ">nan<" not in page.lower()


def test_report_shows_only_the_pictures_there_are(tmp_path):
    run = make_run(tmp_path)
    (run / "interpolation.png").unlink()
    (run / "traversal_factors.png").unlink()
    write_report(run)
    assert_report_shows(run, ["curves.png", "samples.png", "reconstructions.png", "traversal.png",
                              "reconstructions_full.png"], read_metrics(run))


@needs_chromium
def test_every_image_loads_in_chromium(tmp_path):
    report = write_report(make_run(tmp_path))
    status = image_status(report)
    assert len(status) == len(PICTURES)
    assert all(image["ok"] for image in status), status


@needs_chromium
def test_the_browser_check_catches_a_broken_image(tmp_path):
    run = make_run(tmp_path)
    (run / "samples.png").write_bytes(b"not a png")
    status = image_status(write_report(run))
    assert [image["ok"] for image in status].count(False) == 1


def test_each_evaluation_says_the_epoch_it_measured_and_a_stale_one_is_flagged(tmp_path, monkeypatch):
    from vaezoo.analysis import eval_extras

    run = make_run(tmp_path)
    monkeypatch.setattr(eval_extras, "sample_quality_scores", lambda *a, **k: {"fid": 31.5})
    result = eval_extras.evaluate_run(run, None, None, None, disentanglement=False, sample_quality=True)
    assert result["sample_quality"]["epoch"] == 3
    assert json.loads((run / "evaluation.json").read_text())["sample_quality"] == {"fid": 31.5, "epoch": 3}
    page = (run / "report.html").read_text()
    assert "Measured on the weights of epoch 3." in page and "trained to epoch" not in page
    append_metrics(run, {"epoch": 4, "train_loss": 35.0, "val_elbo": -36.0, "seconds": 0.1})  # trained further
    page = write_report(run).read_text()
    assert "Measured on the weights of epoch 3; the run has trained to epoch 4 since" in page
    (run / "evaluation.json").write_text(json.dumps({"sample_quality": {"fid": 1.0}}))  # an older vaezoo's
    assert "an epoch not recorded" in write_report(run).read_text()
