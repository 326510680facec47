"""The default IW-NLL budget of `vaezoo eval`: K = 1000 on every held-out image for small models, a bounded K and
number of images for 64x64 conv models, explicit K and N always used as given, and what was measured said."""
from __future__ import annotations

import json

import pytest
import torch
from held_out_sets import held

import vaezoo
from vaezoo.analysis import nll_budget as budget_rule
from vaezoo.analysis.nll_budget import nll_budget
from vaezoo.cli.main import main


def images(n: int, shape: tuple[int, ...]) -> torch.Tensor:
    """n stored uint8 images of `shape` without n images' memory (one image, broadcast)."""
    return torch.full((1, *shape), 128, dtype=torch.uint8).expand(n, *shape)


def test_small_images_keep_k1000_on_every_image_and_64x64_conv_models_are_bounded():
    mlp = vaezoo.create_model("vae-mlp", input_shape=(1, 28, 28))  # Fashion-MNIST's 10,000 test images
    small = nll_budget(mlp, held(images(10_000, (1, 28, 28))))
    assert (small.samples, small.examples, small.chosen_by) == (1000, 10_000, "default")
    assert small.flops == small.full_flops <= budget_rule.FULL_FLOPS

    conv = vaezoo.create_model("beta-vae-conv", input_shape=(1, 64, 64))  # dSprites' 5,000 held-out images
    large = nll_budget(conv, held(images(5000, (1, 64, 64))))
    assert large.full_flops > 6 * budget_rule.FULL_FLOPS  # 2e14: hours on a CPU
    assert (large.samples, large.examples) == (budget_rule.BOUNDED_SAMPLES, 120)
    assert large.flops <= budget_rule.BOUNDED_FLOPS
    assert large.record() == {"samples": 100, "examples": 120, "chosen_by": "default",
                              "full_flops": large.full_flops, "flops": large.flops}


def test_given_k_and_n_win_and_a_given_pair_counts_nothing(monkeypatch):
    conv = vaezoo.create_model("beta-vae-conv", input_shape=(1, 64, 64))
    held_out = held(images(5000, (1, 64, 64)))
    assert (nll_budget(conv, held_out, samples=1000).samples, nll_budget(conv, held_out, samples=1000).examples) \
        == (1000, 120)
    partly = nll_budget(conv, held_out, examples=5000)
    assert (partly.samples, partly.examples, partly.chosen_by) == (100, 5000, "partly given")
    mlp = vaezoo.create_model("vae-mlp", input_shape=(1, 28, 28))
    assert nll_budget(mlp, held(images(10_000, (1, 28, 28))), examples=20).examples == 20

    def no_counting(*args):
        raise AssertionError("the model's operations were counted for a budget given in full")

    monkeypatch.setattr(budget_rule, "iw_flops", no_counting)
    given = nll_budget(conv, held_out, samples=3, examples=7000)
    assert (given.samples, given.examples, given.chosen_by) == (3, 5000, "given")
    assert given.record() == {"samples": 3, "examples": 5000, "chosen_by": "given"}


def test_eval_says_and_records_what_the_default_measured(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "vae-mlp", "--dataset", "digits", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    full, bounded = budget_rule.FULL_FLOPS, budget_rule.BOUNDED_FLOPS
    monkeypatch.setattr(budget_rule, "FULL_FLOPS", 1e9)  # digits' 297 images at K = 1000 cost 1.2e11
    monkeypatch.setattr(budget_rule, "BOUNDED_FLOPS", 2e9)  # K = 100 on a few dozen of them
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    n = result["nll_examples"]
    assert result["nll_samples"] == 100 and 10 <= n < 297
    assert result["nll_budget"]["chosen_by"] == "default" and result["nll_budget"]["flops"] <= 2e9
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "NLL (IW, K=100)" in out and f"nats on the first {n}\n" in out
    assert "(the default for this model: K=1000 on all 297 would cost 1.2e+11 FLOPs;" in out
    api = vaezoo.evaluate_saved_run(run)  # the Python API's default is the command's
    assert (api["nll_samples"], api["nll_examples"], api["nll"]) == (100, n, result["nll"])

    assert main(["eval", str(run), "--json", "--nll-samples", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["nll_samples"], result["nll_examples"], result["nll_budget"]["chosen_by"]) == (5, n, "partly given")
    assert main(["eval", str(run), "--json", "--nll-samples", "5", "--nll-examples", "297"]) == 0
    assert json.loads(capsys.readouterr().out)["nll_examples"] == 297

    # the real rule: K = 1000 on all 297 digits, said without "on the first"
    monkeypatch.setattr(budget_rule, "FULL_FLOPS", full)
    monkeypatch.setattr(budget_rule, "BOUNDED_FLOPS", bounded)
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "NLL (IW, K=1000)" in out and "on the first" not in out and "the default for this model" not in out
