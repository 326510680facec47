"""The built-in dataset sources read only the rows asked for: image folders (decoded per batch, or from a
prepared cache that is rebuilt when stale or damaged), memory-mapped .npy arrays, dSprites' checked cache,
colour-shapes, and Hugging Face datasets on local disk."""
from __future__ import annotations

import mmap
import os
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaezoo.data import dsprites, image_folder
from vaezoo.data.arrays import load_arrays
from vaezoo.data.colour_shapes import load_colour_shapes
from vaezoo.data.image_folder import FolderImages, load_image_folder
from vaezoo.data.mapped_arrays import MappedImages
from vaezoo.data.splits import Splits, collate_batch
from vaezoo.errors import DataError


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))


def every_row(images) -> torch.Tensor:
    return images.read(np.arange(len(images)))


# -- image folders --------------------------------------------------------------------------------------------

def make_folder(root: Path, per_class: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.fixture
def decodes(monkeypatch):
    """The image files decoded, in order, from here on."""
    seen: list[str] = []
    decode = image_folder.decode_image

    def counting(path, size, channels):
        seen.append(Path(path).name)
        return decode(path, size, channels)

    monkeypatch.setattr(image_folder, "decode_image", counting)
    return seen


def test_a_folder_is_listed_and_split_without_decoding(tmp_path, decodes):
    data = load_image_folder(make_folder(tmp_path / "images"), image_size=16, channels=3)
    assert decodes == []
    assert isinstance(data, Splits) and data.input_shape == (3, 16, 16) and data.train.dtype == torch.uint8
    assert len(data.train) == 18 and len(data.test) == 2
    assert set(torch.cat([data.train.labels, data.test.labels]).tolist()) == {0, 1}
    files = {str(data.train.path(i)) for i in range(18)} | {str(data.test.path(i)) for i in range(2)}
    assert len(files) == 20  # the split is disjoint and covers the folder
    images = data.train.read(np.array([5, 0]))
    assert len(decodes) == 2 and images.shape == (2, 3, 16, 16)
    with Image.open(data.train.path(0)) as image:
        expected = np.asarray(image.convert("RGB").resize((16, 16), Image.BILINEAR)).transpose(2, 0, 1)
    np.testing.assert_array_equal(images[1].numpy(), expected)
    label = ["cats", "dogs"].index(data.train.path(5).parent.name)
    assert int(data.train.__getitems__([5])[1][0]) == label
    again = load_image_folder(tmp_path / "images", image_size=16, channels=3)
    assert [str(again.test.path(i)) for i in range(2)] == [str(data.test.path(i)) for i in range(2)]  # fixed split


def test_a_corrupt_image_in_the_middle_of_an_epoch_is_named(tmp_path):
    folder = make_folder(tmp_path / "images")
    (folder / "cats" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = load_image_folder(folder, image_size=8)  # listing opens no file: the broken one is not seen yet
    images = next(s for s in (data.train, data.test) if any(s.path(i).name == "5.png" and s.path(i).parent.name
                                                             == "cats" for i in range(len(s))))
    with pytest.raises(DataError, match=r"cannot read the image .*cats/5\.png"):
        every_row(images)
    loader = torch.utils.data.DataLoader(images, batch_size=4, num_workers=2, collate_fn=collate_batch)
    with pytest.raises(DataError, match=r"cats/5\.png"):  # from a worker, still a DataError naming the file
        list(loader)


def test_folder_options_are_checked(tmp_path):
    folder = make_folder(tmp_path / "images", per_class=2)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(DataError, match="--image-size must be"):
            load_image_folder(folder, image_size=bad)
    with pytest.raises(DataError, match="1 or 3 channels"):
        load_image_folder(folder, channels=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no PNG or JPEG"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="needs --data-dir"):
        load_image_folder(None)


def test_listing_many_files_opens_none(tmp_path, monkeypatch):
    folder = tmp_path / "many"
    for k in range(5):
        (folder / f"class{k}").mkdir(parents=True)
        for i in range(400):
            (folder / f"class{k}" / f"{i}.jpg").write_bytes(b"")  # not images at all: never opened to list
    (folder / "notes.txt").write_text("not an image")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    data = load_image_folder(folder, image_size=8)
    assert len(data.train) + len(data.test) == 2000 and len(data.test) == 200 and opened == []
    assert set(data.train.labels.tolist()) == {0, 1, 2, 3, 4}


def test_files_are_listed_in_the_order_the_in_memory_loader_used(tmp_path):
    """Path-component order (as sorted pathlib paths), so a folder splits as it did before streaming."""
    for name in ("a.png", "a/x.png", "a-b.png", "a-b/y.jpg", "b/c/d.PNG", "b.jpeg", "B.png", "z/notes.txt",
                 "e.png/f.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    old = sorted(p for p in tmp_path.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"} and p.is_file())
    assert image_folder.list_images(tmp_path) == [p.relative_to(tmp_path).as_posix() for p in old]


def test_a_prepared_cache_is_built_once_and_read_by_rows(tmp_path, decodes, capsys):
    folder = make_folder(tmp_path / "images")
    lazy = load_image_folder(folder, image_size=16, channels=3)
    decodes.clear()
    prepared = load_image_folder(folder, image_size=16, channels=3, prepare=True)
    assert isinstance(prepared.train, MappedImages) and sorted(decodes) == sorted([f"{i}.png" for i in range(10)] * 2)
    assert "preparing 20 images" in capsys.readouterr().err
    torch.testing.assert_close(every_row(prepared.train), every_row(lazy.train))
    torch.testing.assert_close(every_row(prepared.test), every_row(lazy.test))
    torch.testing.assert_close(prepared.train.labels, lazy.train.labels)
    decodes.clear()
    again = load_image_folder(folder, image_size=16, channels=3, prepare=True)
    assert decodes == [] and capsys.readouterr().err == ""  # verified, not rebuilt
    torch.testing.assert_close(every_row(again.train), every_row(lazy.train))
    other = load_image_folder(folder, image_size=8, channels=1, prepare=True)  # another size: its own cache
    assert other.input_shape == (1, 8, 8) and "preparing" in capsys.readouterr().err


def test_a_stale_prepared_cache_is_told_and_rebuilt(tmp_path, decodes, capsys):
    folder = make_folder(tmp_path / "images")
    load_image_folder(folder, image_size=16, prepare=True)
    capsys.readouterr()
    target = folder / "dogs" / "3.png"
    Image.fromarray(np.full((20, 30, 3), 7, dtype=np.uint8)).save(target)  # new content, new size and time
    decodes.clear()
    data = load_image_folder(folder, image_size=16, prepare=True)
    err = capsys.readouterr().err
    assert "is stale" in err and "rebuilding" in err and len(err.strip().splitlines()) == 1
    assert len(decodes) == 20
    lazy = load_image_folder(folder, image_size=16)
    torch.testing.assert_close(every_row(data.train), every_row(lazy.train))
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched only: the time is in the key
    load_image_folder(folder, image_size=16, prepare=True)
    assert "is stale" in capsys.readouterr().err


def test_a_damaged_prepared_cache_is_told_and_rebuilt(tmp_path, capsys):
    folder = make_folder(tmp_path / "images")
    data = load_image_folder(folder, image_size=16, prepare=True)
    capsys.readouterr()
    truth = every_row(data.train).clone()
    cache = data.train.path
    raw = bytearray(cache.read_bytes())
    raw[-500:] = bytes(500)  # zeroed pixels: same size, same header
    cache.write_bytes(bytes(raw))
    data = load_image_folder(folder, image_size=16, prepare=True)
    assert "do not match their checksum); rebuilding" in capsys.readouterr().err
    torch.testing.assert_close(every_row(data.train), truth)
    cache.write_bytes(b"")
    load_image_folder(folder, image_size=16, prepare=True)
    assert "is damaged (0 bytes where" in capsys.readouterr().err
    cache.with_name(cache.name + ".json").write_text("{not json")
    data = load_image_folder(folder, image_size=16, prepare=True)
    assert "record" in capsys.readouterr().err
    torch.testing.assert_close(every_row(data.train), truth)


def test_processes_started_together_build_a_cache_once(tmp_path):
    import multiprocessing

    from vaezoo.data.checked_cache import checked_cache

    log = tmp_path / "builds"

    def fill(f) -> None:
        with open(log, "a") as note:
            note.write("built\n")
        time.sleep(0.5)
        f.write(b"cached bytes")

    def build() -> None:
        assert checked_cache(tmp_path / "c.bin", {"k": 1}, "the test cache", fill).read_bytes() == b"cached bytes"

    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=build) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert [w.exitcode for w in workers] == [0, 0, 0] and log.read_text() == "built\n"


# -- .npy / .npz arrays -------------------------------------------------------------------------------------

def test_npy_images_are_memory_mapped_and_read_by_rows(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (30, 12, 12), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    data = load_arrays(tmp_path / "x.npy")
    assert isinstance(data.train, MappedImages) and data.input_shape == (1, 12, 12) and data.train.dtype == torch.uint8
    assert len(data.train) == 27 and len(data.test) == 3 and data.train.file._array is None  # nothing read yet
    rows = np.array([4, 0, 26])
    images = data.train.read(rows)
    assert isinstance(data.train.file._mm, mmap.mmap) and images.dtype == torch.uint8
    np.testing.assert_array_equal(images[:, 0].numpy(), x[data.train.rows[rows]])
    assert set(data.train.rows.tolist()) | set(data.test.rows.tolist()) == set(range(30))
    clone = pickle.loads(pickle.dumps(data.train))
    assert clone.file._mm is None  # a worker maps the file itself
    torch.testing.assert_close(clone.read(rows), images)


def test_pages_read_are_handed_back_and_read_again_correctly(tmp_path, monkeypatch):
    x = np.random.default_rng(5).integers(0, 256, (64, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(MappedImages.__init__.__globals__["FileMap"], "RESIDENT_LIMIT", 8192)
    images = load_arrays(tmp_path / "x.npy").train
    for start in range(0, len(images), 5):
        rows = np.arange(start, min(start + 5, len(images)))
        np.testing.assert_array_equal(images.read(rows)[:, 0].numpy(), x[images.rows[rows]])
        assert images.file._read <= 8192 + 5 * images.file.FAULT_AROUND


def test_a_npy_file_replaced_after_loading_is_refused_not_mapped_past_its_end(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((40, 8, 8), np.uint8))
    data = load_arrays(tmp_path / "x.npy")
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"x\.npy changed while it was being read; load the dataset again"):
        data.train.read(np.array([0]))


def test_npy_float_rows_are_checked_per_batch(tmp_path):
    x = np.random.default_rng(1).random((20, 6, 6, 3)).astype(np.float32)
    x[11, 2, 2, 0] = np.nan
    np.save(tmp_path / "f.npy", x)
    data = load_arrays(tmp_path / "f.npy")  # loading reads no pixels
    assert data.input_shape == (3, 6, 6) and data.train.dtype == torch.float32
    where = {int(r): i for i, r in enumerate(data.train.rows)}
    sets = (data.train, where) if 11 in where else (data.test, {int(r): i for i, r in enumerate(data.test.rows)})
    images, index = sets
    fine = [i for r, i in index.items() if r != 11][:3]
    torch.testing.assert_close(images.read(np.array(fine)),
                               torch.from_numpy(x[images.rows[fine]].transpose(0, 3, 1, 2).copy()))
    with pytest.raises(DataError, match=r"f\.npy: row 11: float pixels must be finite and lie in \[0, 1\]"):
        images.read(np.array([*fine, index[11]]))


def write_npy_header(path: Path, shape: tuple[int, ...], body: bytes = b"", fortran: bool = False,
                     descr: str = "|u1") -> None:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": fortran, "shape": shape})
        f.write(body)


def test_a_npy_header_promising_more_than_the_file_holds_is_refused(tmp_path):
    huge = tmp_path / "huge.npy"
    write_npy_header(huge, (10**12, 64, 64), bytes(4096))
    with pytest.raises(DataError, match=r"huge\.npy: its header promises 1000000000000 x 64 x 64 uint8 .* "
                                        r"but the file holds"):
        load_arrays(huge)
    cut = tmp_path / "cut.npy"
    np.save(cut, np.zeros((10, 8, 8), np.uint8))
    cut.write_bytes(cut.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated or damaged"):
        load_arrays(cut)
    fortran = tmp_path / "f.npy"
    write_npy_header(fortran, (4, 8, 8), bytes(256), fortran=True)
    with pytest.raises(DataError, match="Fortran order"):
        load_arrays(fortran)
    ints = tmp_path / "i.npy"
    np.save(ints, np.zeros((4, 8, 8), np.int64))
    with pytest.raises(DataError, match="uint8 or float"):
        load_arrays(ints)


def test_a_huge_npz_member_header_is_refused_before_loading(tmp_path):
    path = tmp_path / "huge.npz"
    header = tmp_path / "member.npy"
    write_npy_header(header, (10**12, 64, 64), bytes(64))
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(header, "x.npy")
    with pytest.raises(DataError, match=r"huge\.npz: the header of x\.npy promises 1000000000000 x 64 x 64"):
        load_arrays(path)


def test_npz_stays_in_memory_in_its_stored_dtype(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, (10, 5, 5), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(10))
    data = load_arrays(tmp_path / "a.npz")
    assert data.train.dtype == torch.uint8 and len(data.test) == 1
    rows = np.arange(len(data.train))
    assert sorted(data.train.__getitems__(rows)[1].tolist() + data.test.labels.tolist()) == list(range(10))


# -- dSprites -----------------------------------------------------------------------------------------------

@pytest.fixture
def small_dsprites(monkeypatch):
    """dSprites with 2 scales and 2 orientations (12,288 images)."""
    monkeypatch.setattr(dsprites, "SCALES", dsprites.SCALES[[0, 5]])
    monkeypatch.setattr(dsprites, "ORIENTATIONS", dsprites.ORIENTATIONS[[0, 10]])
    monkeypatch.setattr(dsprites, "GRID", (3, 2, 2, 32, 32))
    monkeypatch.setattr(dsprites, "COUNT", 3 * 2 * 2 * 32 * 32)
    monkeypatch.setattr(dsprites, "HELD_OUT", 1000)


def test_dsprites_reads_only_the_rows_asked_for(small_dsprites, monkeypatch):
    unpack = dsprites.unpack
    unpacked: list[int] = []
    monkeypatch.setattr(dsprites, "unpack", lambda rows: unpacked.append(len(rows)) or unpack(rows))
    data = dsprites.load_dsprites()
    assert unpacked == [] and data.train.dtype == torch.uint8 and data.input_shape == (1, 64, 64)
    assert len(data.train) == 12_288 - 1000 and len(data.test) == 1000 and data.train.factors.shape == (11_288, 5)
    rows = np.array([7, 3, 900])
    images = data.train.read(rows)
    assert unpacked == [3] and set(images.unique().tolist()) <= {0, 255}
    np.testing.assert_array_equal(images[:, 0].numpy() == 255, dsprites.render(data.train.indices[rows]))
    torch.testing.assert_close(data.train.labels, torch.from_numpy(data.train.factors[:, 0]).long())
    clone = pickle.loads(pickle.dumps(data.test))
    assert clone.file._array is None
    torch.testing.assert_close(clone.read(np.array([0, 1])), data.test.read(np.array([0, 1])))
    few = dsprites.load_dsprites(limit=50)
    assert len(few.train) == 50 and np.array_equal(few.train.indices, data.train.indices[:50])


def test_zeroed_rows_of_the_dsprites_cache_are_caught_and_rendered_again(small_dsprites, capsys):
    path = dsprites.verified_cache()
    assert "rendering dSprites once" in capsys.readouterr().err
    raw = bytearray(path.read_bytes())
    raw[-512 * 40:] = bytes(512 * 40)  # the last 40 images blanked
    path.write_bytes(bytes(raw))
    data = dsprites.load_dsprites()
    err = capsys.readouterr().err
    assert "the dSprites cache" in err and "do not match their checksum); rebuilding" in err
    assert len(err.strip().splitlines()) == 1
    last = np.arange(dsprites.COUNT - 40, dsprites.COUNT)
    np.testing.assert_array_equal(dsprites.read_images(last)[:, 0].numpy() == 255, dsprites.render(last))
    assert len(data.train) == 11_288


def test_an_empty_or_unrecorded_dsprites_cache_is_rendered_again(small_dsprites, capsys):
    path = dsprites.verified_cache()
    path.write_bytes(b"")
    dsprites.load_dsprites()
    assert "is damaged (0 bytes where" in capsys.readouterr().err
    path.with_name(path.name + ".json").unlink()
    dsprites.load_dsprites()
    assert "no checksum record" in capsys.readouterr().err
    rows = np.array([0, 5000, 12_287])
    np.testing.assert_array_equal(dsprites.read_images(rows)[:, 0].numpy() == 255, dsprites.render(rows))


# -- colour-shapes ------------------------------------------------------------------------------------------

def test_colour_shapes_are_splits_of_uint8_in_memory():
    data = load_colour_shapes()
    assert isinstance(data, Splits) and data.train.dtype == torch.uint8 and data.input_shape == (3, 32, 32)
    assert len(data.train) + len(data.test) == 3456 and data.factor_names[1] == "colour"
    assert set(data.train.images.unique().tolist()) == {0, 255}


# -- Hugging Face datasets on local disk ----------------------------------------------------------------------

def hf_images(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)) for _ in range(n)]


def test_a_saved_hugging_face_dataset_is_read_by_rows(tmp_path):
    datasets = pytest.importorskip("datasets")
    from vaezoo.data.huggingface import load_huggingface

    features = datasets.Features({"picture": datasets.Image(), "kind": datasets.ClassLabel(names=["a", "b", "c"])})
    images = hf_images(30)
    whole = datasets.Dataset.from_dict({"picture": images, "kind": [i % 3 for i in range(30)]}, features=features)
    datasets.DatasetDict({"train": whole.select(range(24)), "test": whole.select(range(24, 30))}).save_to_disk(
        str(tmp_path / "saved"))
    data = load_huggingface(tmp_path / "saved", image_column="picture", label_column="kind", image_size=8)
    assert data.input_shape == (3, 8, 8) and data.train.dtype == torch.uint8
    assert len(data.train) == 24 and len(data.test) == 6
    assert data.train.labels.tolist() == [i % 3 for i in range(24)]
    got = data.train.read(np.array([9, 2]))
    for image, row in zip(got, (9, 2)):
        expected = np.asarray(images[row].resize((8, 8), Image.BILINEAR)).transpose(2, 0, 1)
        np.testing.assert_array_equal(image.numpy(), expected)
    loader = torch.utils.data.DataLoader(data.test, batch_size=4, num_workers=2, collate_fn=collate_batch)
    torch.testing.assert_close(torch.cat([x for x, _ in loader]), every_row(data.test))
    with pytest.raises(DataError, match="has no column 'image'; its columns are picture, kind"):
        load_huggingface(tmp_path / "saved")
    with pytest.raises(DataError, match="has no split 'training'; its splits are test, train"):
        load_huggingface(tmp_path / "saved", image_column="picture", train_split="training")


def test_parquet_files_without_a_test_split_hold_ten_percent_out(tmp_path):
    datasets = pytest.importorskip("datasets")
    from vaezoo.data.huggingface import load_huggingface

    rng = np.random.default_rng(3)
    arrays = rng.integers(0, 256, (40, 6, 6), dtype=np.uint8)
    table = datasets.Dataset.from_dict(
        {"pixels": list(arrays), "label": [["x", "y"][i % 2] for i in range(40)]},
        features=datasets.Features({"pixels": datasets.Array2D((6, 6), "uint8"), "label": datasets.Value("string")}))
    (tmp_path / "pq").mkdir()
    table.to_parquet(str(tmp_path / "pq" / "train-00000-of-00001.parquet"))
    data = load_huggingface(tmp_path / "pq", image_column="pixels")
    assert data.input_shape == (1, 6, 6) and data.train.dtype == torch.uint8
    assert len(data.train) == 36 and len(data.test) == 4
    rows = np.array([0, 35])
    np.testing.assert_array_equal(data.train.read(rows)[:, 0].numpy(), arrays[data.train.rows[rows]])
    assert data.train.labels.tolist() == [data.train.rows[i] % 2 for i in range(36)]  # "x" -> 0, "y" -> 1


def test_hugging_face_rows_that_change_shape_are_refused_with_their_index(tmp_path):
    datasets = pytest.importorskip("datasets")
    from vaezoo.data.huggingface import load_huggingface

    ragged = [np.zeros((4, 4), np.uint8).tolist()] * 5 + [np.zeros((5, 4), np.uint8).tolist()]
    table = datasets.Dataset.from_dict({"image": ragged}, features=datasets.Features(
        {"image": datasets.Sequence(datasets.Sequence(datasets.Value("uint8")))}))
    table.save_to_disk(str(tmp_path / "ragged"))
    data = load_huggingface(tmp_path / "ragged")
    images = data.train if 5 in data.train.rows else data.test
    with pytest.raises(DataError, match=r"row 5 of 'image' is shaped \(5, 4\)"):
        every_row(images)


def test_without_the_datasets_package_the_error_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from vaezoo.data.huggingface import load_huggingface

    monkeypatch.setitem(sys.modules, "datasets", None)  # as if it were not installed
    (tmp_path / "saved").mkdir()
    with pytest.raises(DataError, match=r"needs the `datasets` package: pip install 'vaezoo\[hf\]'"):
        load_huggingface(tmp_path / "saved")
