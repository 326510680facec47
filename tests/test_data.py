"""Datasets: the IDX reader on files made here, digits, binarization and batching."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vaezoo.data.arrays import load_arrays
from vaezoo.data.binarize import fixed_bits
from vaezoo.data.datasets import load_dataset
from vaezoo.data.sampling import EpochBatches
from vaezoo.data.image_folder import load_image_folder
from vaezoo.data.readers import read_idx
from vaezoo.errors import DataError, UnknownNameError


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def make_mnist_dir(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    return root


def test_fashion_mnist_reads_idx_files(tmp_path):
    data = load_dataset("fashion-mnist", make_mnist_dir(tmp_path))
    assert data.train_x.shape == (20, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)
    assert data.train_x.dtype == torch.float32
    assert 0.0 <= data.train_x.min() and data.train_x.max() <= 1.0
    raw = read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    torch.testing.assert_close(data.train_x[:, 0], torch.from_numpy(raw / 255.0).float())


def test_truncated_and_foreign_files_are_named(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((3, 4, 4)), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    path.write_bytes(b"hello world")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(path)
    gz = tmp_path / "broken.gz"
    gz.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="broken.gz"):
        read_idx(gz)


def test_missing_directory_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path / "nope")
    with pytest.raises(DataError, match="no t10k-images"):
        (tmp_path / "partial").mkdir()
        write_idx(tmp_path / "partial" / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
        write_idx(tmp_path / "partial" / "train-labels-idx1-ubyte.gz", np.zeros((2,)))
        load_dataset("fashion-mnist", tmp_path / "partial")


def test_unknown_dataset_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'digits'"):
        load_dataset("digit")


def test_digits_split_is_fixed_and_disjoint():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.input_shape == (1, 8, 8)
    assert len(a.train_x) + len(a.test_x) == 1797
    torch.testing.assert_close(a.test_x, b.test_x)
    assert a.train_x.max() == 1.0 and a.train_x.min() == 0.0


def test_binarization_is_fixed_for_evaluation_and_fresh_in_training():
    x = torch.full((100, 1, 4, 4), 0.5)
    rows = torch.arange(len(x))
    torch.testing.assert_close(fixed_bits(x, rows, 0), fixed_bits(x, rows, 0))
    assert set(fixed_bits(x, rows, 0).unique().tolist()) == {0.0, 1.0}
    from vaezoo.data.splits import Splits, TensorImages
    from vaezoo.registry.factory import create_model
    from vaezoo.training.trainer import TrainConfig, Trainer

    labels = torch.zeros(100, dtype=torch.long)
    data = Splits("halves", TensorImages(x, labels), TensorImages(x[:10], labels[:10]))
    trainer = Trainer(TrainConfig("vae-mlp", "halves", "unused", batch_size=50), data,
                      create_model("vae-mlp", input_shape=(1, 4, 4)), None, False)
    loaded = next(trainer.batches.epoch(1, 0))
    first, again = trainer.batch(0, loaded)[0], trainer.batch(0, loaded)[0]
    trainer.state.epoch = 2
    second = trainer.batch(0, loaded)[0]
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first, again)  # one draw per image and epoch, whoever reads it ...
    assert not torch.equal(first, second)  # ... and the same examples drawn afresh the next epoch


def test_an_epochs_batches_cover_every_example_once():
    seen = [row for batch in EpochBatches(10, 3, seed=1) for row in batch]
    assert sorted(seen) == list(range(10))
    assert [len(b) for b in EpochBatches(10, 3, seed=1, shuffle=False)] == [3, 3, 3, 1]


def test_mnist_reads_idx_files(tmp_path):
    data = load_dataset("mnist", make_mnist_dir(tmp_path))
    assert data.input_shape == (1, 28, 28) and len(data.test_x) == 10
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("mnist", tmp_path / "missing")


def test_image_folder_resizes_and_labels_by_subfolder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_image_folder(tmp_path, image_size=16, channels=3)
    assert data.input_shape == (3, 16, 16)
    assert len(data.train) + len(data.test) == 20 and len(data.test) == 2
    assert set(torch.cat([data.train.labels, data.test.labels]).tolist()) == {0, 1}
    assert data.train.read(np.arange(18)).dtype == torch.uint8  # scaled to [0, 1] per batch


def test_image_folder_errors_name_the_problem(tmp_path):
    from PIL import Image

    with pytest.raises(DataError, match="holds no PNG or JPEG"):
        load_image_folder(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("L", (4, 4)).save(tmp_path / "fine.png")
    data = load_image_folder(tmp_path)  # decoded when read, not when listed
    with pytest.raises(DataError, match="broken.png"):
        data.train.read(np.arange(len(data.train))), data.test.read(np.arange(len(data.test)))
    with pytest.raises(DataError, match="needs --data-dir"):
        load_image_folder(None)


def test_arrays_from_npy_and_npz(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 12, 12), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    data = load_arrays(tmp_path / "x.npy")
    assert data.input_shape == (1, 12, 12) and len(data.test) == 3
    nhwc = np.random.default_rng(1).random((8, 6, 6, 3)).astype(np.float32)
    np.savez(tmp_path / "split.npz", x_train=nhwc, x_test=nhwc[:2], y_train=np.arange(8), y_test=np.arange(2))
    data = load_arrays(tmp_path / "split.npz")
    assert data.input_shape == (3, 6, 6) and len(data.test) == 2
    torch.testing.assert_close(data.train.read(np.array([0]))[0], torch.from_numpy(nhwc[0].transpose(2, 0, 1)))


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((4, 5), np.uint8)}, "must be \\[N, H, W\\]"),
        ({"x": np.full((4, 5, 5), 2.0)}, "lie in \\[0, 1\\]"),
        ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.zeros(3, np.int64)}, "4 integer labels"),
        ({"images": np.zeros((4, 5, 5), np.uint8)}, "must hold an array 'x'"),
    ],
)
def test_bad_arrays_are_named(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_arrays(path)
    assert "bad.npz" in str(info.value)


def test_truncated_npz_is_named(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez(path, x=np.zeros((10, 8, 8), np.uint8))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="cut.npz"):
        load_arrays(path)
