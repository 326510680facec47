"""From a trained model to pictures and numbers: the explore functions and the eval/picture commands."""
from __future__ import annotations

import json

import pytest
import torch
from grids import assert_shows, read_cells

import vaezoo
from vaezoo.analysis import explore
from vaezoo.cli.main import main
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "run"
    assert main(["train", "vae-mlp", "--dataset", "digits", "--epochs", "3", "--latent-dim", "4", "--quiet",
                 "--set", "encoder.hidden_dims=[64]", "--set", "decoder.hidden_dims=[64]", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def model(run):
    return vaezoo.load_model(run)


def test_interpolation_starts_and_ends_at_the_inputs(model):
    x = load_dataset("digits").test_x[:4]
    for spherical in (False, True):
        path = explore.interpolate(model, x[:2], x[2:], steps=5, spherical=spherical).view(2, 5, 1, 8, 8)
        torch.testing.assert_close(path[:, 0], model.reconstruct(x[:2]))
        torch.testing.assert_close(path[:, -1], model.reconstruct(x[2:]))


def test_slerp_keeps_the_norm_between_equal_norm_codes():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    mid = explore.slerp(a, b, torch.tensor([0.5]))
    torch.testing.assert_close(mid.norm(dim=-1), torch.tensor([[3.0]]))


def test_arithmetic_decodes_a_minus_b_plus_c(model):
    x = load_dataset("digits").test_x[:3]
    grid = explore.arithmetic(model, x[[0]], x[[1]], x[[2]])
    z = model.posterior_mean(x, None)
    torch.testing.assert_close(grid[3], model.decode((z[0] - z[1] + z[2])[None])[0])
    torch.testing.assert_close(grid[:3], x)


def test_attribute_vector_is_the_difference_of_class_means(model):
    data = load_dataset("digits")
    shift = explore.attribute_vector(model, data.test_x, data.test_y, 1, 7)
    z = model.posterior_mean(data.test_x, None)
    torch.testing.assert_close(shift, z[data.test_y == 7].mean(0) - z[data.test_y == 1].mean(0))
    with pytest.raises(ValueError, match="no example has label 11"):
        explore.attribute_vector(model, data.test_x, data.test_y, 1, 11)


def test_traversal_moves_only_one_dimension_per_row(model):
    x = load_dataset("digits").test_x[:1]
    images = explore.traverse(model, x, steps=5, dims=[0, 2])
    assert images.shape == (10, 1, 8, 8)
    base = model.posterior_mean(x, None)
    for row, dim in enumerate([0, 2]):  # each row's middle: x's code with that dimension at the prior's median, ~0
        code = base.clone()
        code[0, dim] = 0.0
        torch.testing.assert_close(images[row * 5 + 2], model.decode(code)[0], atol=0.05, rtol=0)
    assert not torch.allclose(images[0], images[4])


def sampled(model, x, y):
    torch.manual_seed(1)  # --seed 1
    return model.sample(5, temperature=0.5)


def inputs_beside_reconstructions(model, x, y):
    return torch.stack([x[:8], model.reconstruct(x[:8])], dim=1).reshape(16, 1, 8, 8)


def slerp_walk(model, x, y):
    walk = explore.interpolate(model, x[[0]], x[[5]], 6, spherical=True)
    torch.testing.assert_close(walk[[0, -1]], model.reconstruct(x[[0, 5]]))  # from one input's code to the other's
    return walk


def a_minus_b_plus_c(model, x, y):
    z = model.posterior_mean(x[:3])
    return torch.cat([x[:3], model.decode((z[0] - z[1] + z[2])[None])])


def moved_from_1_to_7(model, x, y):
    z = model.posterior_mean(x)
    shift = z[y == 7].mean(0) - z[y == 1].mean(0)
    return torch.cat([x[:1], model.decode(z[:1] + shift)])


def two_sweeps(model, x, y):
    torch.manual_seed(2)  # --seed 2: the sweep's range comes from draws of the prior
    return explore.traverse(model, x[:1], steps=9, dims=[0, 1])


@pytest.mark.parametrize(
    "command, n, nrow, shown",
    [
        (["sample", "--n", "5", "--temperature", "0.5", "--seed", "1"], 5, 3, sampled),  # 3 + 2 cells, 1 left white
        (["reconstruct", "--n", "8"], 16, 16, inputs_beside_reconstructions),
        (["interpolate", "--steps", "6", "--pair", "0", "5", "--slerp"], 6, 6, slerp_walk),
        (["arithmetic", "--a", "0", "--b", "1", "--c", "2"], 4, 4, a_minus_b_plus_c),
        (["arithmetic", "--a", "0", "--from-label", "1", "--to-label", "7"], 2, 2, moved_from_1_to_7),
        (["traverse", "--dims", "0", "1", "--seed", "2"], 18, 9, two_sweeps),
    ],
    ids=["sample", "reconstruct", "interpolate", "arithmetic", "attribute", "traverse"],
)
def test_picture_commands_draw_what_they_claim(run, model, tmp_path, capsys, command, n, nrow, shown):
    out = tmp_path / "picture.png"
    assert main([command[0], str(run), "--out", str(out), *command[1:]]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    data = load_dataset("digits")  # the held-out split, as the commands take it: grey, not binarized
    with torch.no_grad():
        expected = shown(model, data.test_x, data.test_y)
    assert_shows(read_cells(out, n, nrow), expected, " ".join(command))


@pytest.mark.parametrize("command, rows", [
    (["reconstruct", "--n", "8"], 8),
    (["interpolate", "--pair", "0", "5"], 2),
    (["interpolate"], 16),
    (["arithmetic", "--a", "0", "--b", "1", "--c", "2"], 3),
    (["arithmetic", "--a", "0", "--from-label", "1", "--to-label", "7"], "classes 1 and 7, and a"),
    (["traverse", "--index", "3"], 1),
])
def test_picture_commands_read_only_the_rows_they_show(run, tmp_path, capsys, monkeypatch, command, rows):
    from held_out_sets import CountingImages

    from vaezoo.data.splits import Splits
    from vaezoo.runs import directory

    digits = load_dataset("digits")
    test = CountingImages(digits.test.images, digits.test.labels, most=64)
    monkeypatch.setattr(directory, "load_run_data", lambda *args: Splits("digits", digits.train, test))
    assert main([command[0], str(run), "--out", str(tmp_path / "p.png"), *command[1:]]) == 0
    if rows == "classes 1 and 7, and a":
        rows = int(((test.labels == 1) | (test.labels == 7)).sum()) + 1
    assert test.rows_read == rows


def test_picture_commands_reject_bad_indices(run, tmp_path, capsys):
    assert main(["interpolate", str(run), "--pair", "0", "9999", "--out", str(tmp_path / "p.png")]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["sample", str(run), "--label", "3", "--out", str(tmp_path / "p.png")]) == 2
    assert "not conditional" in capsys.readouterr().err


def test_eval_reports_consistent_numbers(run, model, capsys):
    assert main(["eval", str(run), "--nll-samples", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 297
    assert result["elbo"] == pytest.approx(result["recon"] - result["kl"])
    assert result["nll"] < -result["elbo"] + 1.0  # the IW bound is at least as tight as the ELBO
    assert sum(result["kl_per_dim"]) == pytest.approx(result["kl"], rel=1e-4)
    assert 0 <= result["mutual_information"] <= result["kl"] + 1e-6  # E KL = I(x;z) + KL(q(z) || p(z))
    held_out = held_out_set(load_dataset("digits"), model)  # the run's: binarized once, per row
    x = held_out.first(len(held_out))[0]
    variances = model.posterior_mean(x, None).var(0)
    assert result["active_units"] == int((variances > 0.01).sum())
    assert result["bits_per_dim"] == pytest.approx(result["nll"] / (64 * 0.6931471805599453))


def test_the_python_api_draws_the_pictures_the_commands_write(run, model):
    from vaezoo.analysis import run_pictures
    from vaezoo.errors import SettingError, VaezooError

    loaded, held_out = vaezoo.open_run(run, seed=1)
    data = load_dataset("digits")
    grid = run_pictures.reconstructions(loaded, held_out, 8)
    assert grid.nrow == 16
    torch.testing.assert_close(grid.images, inputs_beside_reconstructions(model, data.test_x, data.test_y))
    assert run_pictures.walk_pairs(held_out) == ([0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15])
    assert run_pictures.walk_pairs(held_out.head(3)) == ([0], [1])
    with pytest.raises(VaezooError, match="has 1 image; interpolation needs two"):
        run_pictures.walk_pairs(held_out.head(1))
    walks = run_pictures.interpolations(loaded, held_out, steps=3)
    assert walks.nrow == 3 and walks.images.shape == (24, 1, 8, 8)
    grid = run_pictures.attribute_shift(loaded, held_out, 0, 1, 7)
    torch.testing.assert_close(grid.images, moved_from_1_to_7(model, data.test_x, data.test_y))
    torch.testing.assert_close(run_pictures.latent_arithmetic(loaded, held_out, 0, 1, 2).images,
                               a_minus_b_plus_c(model, data.test_x, data.test_y))
    with pytest.raises(SettingError, match="^b 9999 is out of range") as caught:  # the argument is named
        run_pictures.latent_arithmetic(loaded, held_out, 0, 9999, 2)
    assert caught.value.settings == ("b",)
    with pytest.raises(SettingError, match=r"dims must be in 0..3, got \[4\]"):
        run_pictures.traversal(loaded, held_out, dims=[4])
    with pytest.raises(SettingError, match="steps must be a whole number of at least 2, got 1"):
        run_pictures.traversal(loaded, held_out, steps=1)
    with pytest.raises(SettingError, match="label needs a conditional variant"):
        run_pictures.samples(loaded, 4, label=3)


def test_the_python_api_evaluates_a_run_as_eval_does(run, capsys):
    import math

    from vaezoo.errors import NonFiniteError, SettingError

    result = vaezoo.evaluate_saved_run(run, nll_samples=5, nll_examples=10)
    assert main(["eval", str(run), "--nll-samples", "5", "--nll-examples", "10", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert result["nll_examples"] == printed["nll_examples"] == 10 and result["latent_dim"] == 4
    assert result["elbo"] == pytest.approx(printed["elbo"])
    with pytest.raises(SettingError, match="^nll_examples must be a whole number of at least 1, got 0$"):
        vaezoo.evaluate_saved_run(run, nll_examples=0)
    vaezoo.check_finite(run, result)
    with pytest.raises(NonFiniteError, match="non-finite \\(elbo\\)"):
        vaezoo.check_finite(run, {**result, "elbo": math.nan})
