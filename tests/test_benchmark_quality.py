"""The quality benchmark's measurements and table (benchmarks/quality), on a digits run: each figure against
an independent computation, and the table's sections, missing cells and commands."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

import vaezoo
from vaezoo import metrics
from vaezoo.analysis.evaluate import elbo, importance_weighted_nll
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set

QUALITY = Path(__file__).resolve().parents[1] / "benchmarks" / "quality"


def script(name: str) -> ModuleType:
    """A module of benchmarks/quality, under a name of its own (the scripts import each other by file name)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_quality_{name}", QUALITY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


measure, write_table = script("measure").measure, script("run").write_table


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def trained(variant: str, digits, out: Path) -> Path:
    torch.manual_seed(0)
    vaezoo.fit(vaezoo.create_model(variant, input_shape=(1, 8, 8)), digits.train_x, epochs=1, out=out)
    return out


def test_a_row_holds_what_the_run_measures(digits, tmp_path):
    run = trained("vae-mlp", digits, tmp_path / "vae")
    row = measure(run, digits, nll_samples=3, sample_quality=False, nll_examples=50)
    model = vaezoo.load_model(run)
    held_out = held_out_set(digits, model)
    assert row["elbo"] == pytest.approx(elbo(model, held_out)["elbo"])
    assert row["iw_nll"] == pytest.approx(importance_weighted_nll(model, held_out.head(50), samples=3))
    assert row["nll_samples"] == 3 and row["nll_examples"] == 50 and row["iw_nll_unavailable"] is None
    x = held_out.first(len(held_out))[0]
    with torch.no_grad():
        expected = F.mse_loss(model.eval().reconstruct(x), x).item()
    assert row["reconstruction_mse"] == pytest.approx(expected, rel=1e-5)
    assert row["data_sharpness"] == pytest.approx(metrics.sharpness(digits.test_x[:1000].numpy()))
    assert 0 < row["sample_sharpness"] < row["data_sharpness"]  # decoded means are blurrier than digits
    assert row["latent_dim"] == 20 and row["threads"] == torch.get_num_threads()


def test_a_model_without_an_iw_bound_says_why(digits, tmp_path):
    row = measure(trained("gumbel-vae-mlp", digits, tmp_path / "gumbel"), digits, nll_samples=3,
                  sample_quality=False)
    assert row["iw_nll"] is None and row["nll_samples"] is None and "relaxed" in row["iw_nll_unavailable"]
    assert row["nll_examples"] is None


def test_the_benchmark_and_eval_score_a_run_on_the_same_held_out_set(digits, tmp_path, capsys):
    from vaezoo.cli.main import main
    from vaezoo.training.trainer import TrainConfig, train

    # a Bernoulli model trained on grey digits (binarize none): "auto" would binarize its held-out set
    run = train(TrainConfig(variant="vae-mlp", dataset="digits", out=str(tmp_path / "run"), epochs=1, binarize="none",
                            overrides={"encoder.hidden_dims": [16], "decoder.hidden_dims": [16]}), progress=False)
    assert main(["eval", str(run), "--nll-samples", "3", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    row = measure(run, digits, nll_samples=3, sample_quality=False)
    assert row["elbo"] == evaluated["elbo"] and row["iw_nll"] == evaluated["nll"]
    assert row["active_units"] == evaluated["active_units"]
    model = vaezoo.load_model(run)
    assert row["elbo"] != pytest.approx(elbo(model, held_out_set(digits, model, "auto"))["elbo"])


def test_the_table_has_one_section_per_budget_with_its_commands(tmp_path):
    base = {"active_units": 5, "latent_dim": 20, "elbo": -240.0, "nll_samples": 100, "reconstruction_mse": 0.1,
            "sample_sharpness": 0.04, "data_sharpness": 0.19, "train_seconds": 120.0, "median_epoch_seconds": 8.0,
            "threads": 1, "iw_nll_unavailable": None}
    rows = {
        "vae-mlp@50": {**base, "variant": "vae-mlp", "epochs": 50, "iw_nll": 233.8, "command": "run --epochs 50"},
        "a@10": {**base, "variant": "a", "epochs": 10, "iw_nll": 239.0, "nll_examples": 1000, "fid": 17.0,
                 "precision": 0.8, "recall": 0.4,
                 "command": "run --epochs 10"},
        "b@10": {**base, "variant": "b", "epochs": 10, "iw_nll": 238.0, "command": "run --epochs 10"},
        "c@10": {**base, "variant": "c", "epochs": 10, "iw_nll": None, "nll_samples": None,
                 "iw_nll_unavailable": "no density", "command": "run --epochs 10 --variants c"},
    }
    write_table(rows, tmp_path / "quality.md")
    text = (tmp_path / "quality.md").read_text()
    fifty, ten = text.split("## 50 epochs")[1].split("## 10 epochs")
    assert "| vae-mlp | 5/20 | -240.00 | 233.80 | 100 |" in fifty and "`run --epochs 50`" in fifty
    lines = [line for line in ten.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [line.split(" | ")[0] for line in lines] == ["| b", "| a", "| c"]  # best IW-NLL first, none last
    assert "| 239.00 | 100 | 1000 |" in lines[1] and "| 238.00 | 100 | - |" in lines[0]
    assert "| 17.00 | 0.800 | 0.400 |" in lines[1] and "| - | - | - |" in lines[0]
    assert "| c | 5/20 | -240.00 | - | - |" in lines[2] and "IW-NLL not defined for c: no density." in ten
    assert "`run --epochs 10`" in ten and "`run --epochs 10 --variants c`" in ten and "2.0 | 8.0 | 1 |" in lines[0]
    assert "Real held-out images score sample sharpness 0.1900." in ten
