"""Ground-truth datasets: dSprites' factor grid and rendering, its packed-bit cache, colour-shapes, --limit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vaezoo.analysis import eval_extras
from vaezoo.data import colour_shapes, dsprites
from vaezoo.data.datasets import load_dataset
from vaezoo.errors import DataError
from vaezoo.metrics import classifier


def index(shape=0, scale=5, orientation=0, x=16, y=16) -> int:
    return int(np.ravel_multi_index((shape, scale, orientation, x, y), dsprites.GRID))


def centroid(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image)
    return rows.mean(), cols.mean()


def test_the_factor_grid_is_that_of_dsprites():
    assert dsprites.GRID == (3, 6, 40, 32, 32) and dsprites.COUNT == 737_280
    values = dsprites.factor_values(np.arange(0, dsprites.COUNT, 7))
    assert [len(np.unique(values[:, k])) for k in range(5)] == [3, 6, 40, 32, 32]
    assert values[:, 1].min() == 0.5 and values[:, 1].max() == 1.0
    assert values[:, 2].max() == pytest.approx(2 * np.pi) and values[:, 3].max() == 1.0
    # index order: shape, scale, orientation, x, y (the last varies fastest)
    np.testing.assert_array_equal(dsprites.factor_values(np.array([1]))[0], [0, 0.5, 0, 0, 1 / 31])


def test_rendered_sprites_follow_their_factors():
    square, ellipse, heart = dsprites.render([index(shape=s) for s in range(3)])
    assert not np.array_equal(square, heart) and not np.array_equal(ellipse, heart)
    assert square.sum() > heart.sum() > ellipse.sum() > 0  # a square fills its box, an ellipse half its height
    left, right = dsprites.render([index(x=3), index(x=23)])
    (r0, c0), (r1, c1) = centroid(left), centroid(right)
    assert c1 - c0 == pytest.approx(20.0, abs=0.01) and r1 == pytest.approx(r0)  # one pixel per x step
    top, bottom = dsprites.render([index(y=2), index(y=30)])
    assert centroid(bottom)[0] - centroid(top)[0] == pytest.approx(28.0, abs=0.01)
    areas = dsprites.render([index(scale=s) for s in range(6)]).sum(axis=(1, 2))
    assert np.all(np.diff(areas) > 0)
    assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.15)  # area grows with the square of the scale
    upright, turned = dsprites.render([index(orientation=0), index(orientation=5)])  # 5/39 of a turn
    assert not np.array_equal(upright, turned) and abs(int(upright.sum()) - int(turned.sum())) < 0.1 * upright.sum()
    full_turn = dsprites.render([index(orientation=0), index(orientation=39)])  # 0 and 2 pi
    np.testing.assert_array_equal(full_turn[0], full_turn[1])


@pytest.fixture
def small_dsprites(tmp_path, monkeypatch):
    """dSprites with 2 scales and 2 orientations (12,288 images), cached under tmp_path."""
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(dsprites, "SCALES", dsprites.SCALES[[0, 5]])
    monkeypatch.setattr(dsprites, "ORIENTATIONS", dsprites.ORIENTATIONS[[0, 10]])
    monkeypatch.setattr(dsprites, "GRID", (3, 2, 2, 32, 32))
    monkeypatch.setattr(dsprites, "COUNT", 3 * 2 * 2 * 32 * 32)
    monkeypatch.setattr(dsprites, "HELD_OUT", 1000)
    return tmp_path


def test_the_cache_holds_packed_bits_of_every_image(small_dsprites):
    packed = dsprites.packed_images()
    assert packed.shape == (12_288, 512) and packed.dtype == np.uint8
    name = f"dsprites-v{dsprites.VERSION}.npy"
    assert sorted(p.name for p in small_dsprites.iterdir()) == [name, f"{name}.json", f"{name}.lock"]  # no temp file
    rows = np.random.default_rng(0).choice(12_288, 40, replace=False)
    np.testing.assert_array_equal(dsprites.read_images(rows)[:, 0].numpy().astype(bool), dsprites.render(rows))


def test_loading_dsprites_with_a_limit(small_dsprites):
    data = dsprites.load_dsprites(limit=50)
    assert len(data.train) == 50 and len(data.test) == 1000 and data.input_shape == (1, 64, 64)
    assert data.factor_names == ("shape", "scale", "orientation", "position_x", "position_y")
    assert data.train.factors.shape == (50, 5) and data.test.factors.shape == (1000, 5)
    torch.testing.assert_close(data.train.labels, torch.from_numpy(data.train.factors[:, 0]).long())
    again = dsprites.load_dsprites(limit=80)
    first = data.train.read(np.arange(50))
    torch.testing.assert_close(again.train.read(np.arange(50)), first)  # the first N of one fixed shuffle
    for image, factors in zip(first[:10, 0].numpy(), data.train.factors[:10]):
        rows, cols = centroid(image)
        assert abs(cols - (16 + 31 * factors[3])) < 2.5 and abs(rows - (16 + 31 * factors[4])) < 2.5
    with pytest.raises(DataError, match="takes no --data-dir"):
        load_dataset("dsprites", "/somewhere")


def test_a_limited_load_still_gives_the_whole_training_split(small_dsprites):
    """dsprites takes --limit itself; the limited Splits still give the whole training split, made once and only
    when asked (the dataset's feature network is made from it, so its cache key is the unlimited data's)."""
    few, whole = load_dataset("dsprites", limit=50), load_dataset("dsprites")
    assert len(few.train) == 50 and few.full_train() is few.full_train() and whole.full_train() is whole.train
    full = few.full_train()
    assert len(full) == len(whole.train) == 12_288 - 1000
    rows = np.array([0, 7, 11_287])
    torch.testing.assert_close(full.read(rows), whole.train.read(rows))
    torch.testing.assert_close(full.labels, whole.train.labels)
    images = [eval_extras._feature_images(s) for s in (full, few.test, whole.train, whole.test)]
    settings = (classifier.STEPS, classifier.BATCH_SIZE, classifier.SEED)
    assert classifier.cache_key("dsprites", *images[:2], *settings) == classifier.cache_key("dsprites", *images[2:], *settings)
    digits = load_dataset("digits", limit=100)  # a loader that does not take limit: limited after loading
    assert len(digits.full_train()) == len(load_dataset("digits").train)


def test_a_damaged_cache_is_rendered_again(small_dsprites, capsys):
    dsprites.packed_images()
    path = dsprites.cache_path()
    path.write_bytes(path.read_bytes()[:1000])
    rows = np.arange(0, 12_288, 97)
    np.testing.assert_array_equal(dsprites.read_images(rows)[:, 0].numpy() == 255, dsprites.render(rows))
    assert "the dSprites cache is damaged" in capsys.readouterr().err


def test_colour_shapes_has_independent_factors():
    data = colour_shapes.load_colour_shapes()
    assert data.input_shape == (3, 32, 32) and len(data.train) + len(data.test) == 3 * 6 * 3 * 8 * 8
    factors = np.concatenate([data.train.factors, data.test.factors])
    assert [len(np.unique(factors[:, k])) for k in range(5)] == [3, 6, 3, 8, 8]
    images = data.train.read(np.arange(20)).float() / 255
    assert set(torch.unique(images).tolist()) == {0.0, 1.0}
    # colour: the image's mean colour over lit pixels is the factor's hue
    for image, f in zip(images.numpy(), data.train.factors[:20]):
        lit = image.max(0) > 0
        rgb = image[:, lit].mean(1)
        np.testing.assert_array_equal(rgb, colour_shapes.COLOURS[int(round(f[1] * 6))])


def test_limit_keeps_the_first_examples_of_a_fixed_shuffle():
    full, few = load_dataset("digits"), load_dataset("digits", limit=100)
    assert len(few.train_x) == 100 and len(few.test_x) == len(full.test_x)
    torch.testing.assert_close(load_dataset("digits", limit=30).train_x, few.train_x[:30])
    assert not torch.equal(few.train_x, full.train_x[:100])  # shuffled, not the head of the file
    for bad in (0, -3, 2.5, True):
        with pytest.raises(DataError, match="limit must be a positive integer"):
            load_dataset("digits", limit=bad)
