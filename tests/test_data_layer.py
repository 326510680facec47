"""The streaming data layer: fixed binarization by (seed, row), the epoch sampler's order and shards, `limit`
reading only its rows, vaezoo.fit on an IterableDataset, on a map Dataset that augments and on a user's
DataLoader with workers, one-line errors from workers (and resuming after them), items that change shape or
dtype mid-stream."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from plugin_sites import FILES, write_image_files
from safetensors.torch import load_file

import vaezoo
from vaezoo.data.binarize import dynamic_bits, fixed_bits
from vaezoo.data.datasets import limit_training, load_dataset
from vaezoo.data.sampling import EpochBatches
from vaezoo.data.splits import ImageSet, Rows, Splits, TensorImages
from vaezoo.errors import DataError, VaezooError
from vaezoo.runs.directory import read_metrics
from vaezoo.runtime.distributed import World
from vaezoo.training.batches import auto_workers
from vaezoo.training.trainer import TrainConfig, Trainer, resume, train

SMALL = {"encoder.hidden_dims": [16], "decoder.hidden_dims": [16]}


def small_model(shape=(1, 8, 8)):
    return vaezoo.create_model("vae-mlp", input_shape=shape, latent_dim=2, hidden_dims=[16])


def test_fixed_bits_depend_only_on_the_seed_and_the_row_and_dynamic_ones_on_the_batch():
    x = torch.rand(300, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    rows = torch.arange(1000, 1300)
    whole = fixed_bits(x, rows, seed=7)
    assert set(whole.unique().tolist()) == {0.0, 1.0}
    pieces = torch.cat([fixed_bits(x[i : i + 37], rows[i : i + 37], seed=7) for i in range(0, 300, 37)])
    assert torch.equal(pieces, whole)  # batching does not change a draw
    shuffled = torch.randperm(300, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fixed_bits(x[shuffled], rows[shuffled], seed=7), whole[shuffled])  # nor does the order
    assert not torch.equal(fixed_bits(x, rows, seed=8), whole)
    assert not torch.equal(fixed_bits(x, rows + 1, seed=7), whole)
    p = torch.full((4000, 1, 4, 4), 0.3)
    assert abs(fixed_bits(p, torch.arange(4000), seed=0).mean().item() - 0.3) < 0.005  # Bernoulli(0.3)
    # a fresh draw per (seed, epoch, batch), of which two shards are what one process draws
    first = dynamic_bits(x, 300, 0, seed=7, epoch=1, batch=0)
    halves = [dynamic_bits(x[:100], 300, 0, 7, 1, 0), dynamic_bits(x[100:], 300, 100, 7, 1, 0)]
    assert torch.equal(torch.cat(halves), first)
    assert not torch.equal(dynamic_bits(x, 300, 0, 7, 2, 0), first)
    assert not torch.equal(dynamic_bits(x, 300, 0, 7, 1, 1), first)


def test_the_epoch_order_is_a_function_of_seed_and_epoch_and_each_rank_reads_only_its_shard():
    one = EpochBatches(103, 10, seed=4)
    assert torch.equal(one.permutation(3), EpochBatches(103, 10, seed=4).permutation(3))
    assert not torch.equal(one.permutation(3), one.permutation(4))
    one.set_position(3, 0)
    whole = list(one)
    assert sorted(sum(whole, [])) == list(range(103)) and len(whole) == 11
    one.set_position(3, 6)
    assert list(one) == whole[6:]  # resuming at batch 6 reads what is left, in the same order
    ranks = [EpochBatches(103, 10, seed=4, world=World(rank=r, size=2)) for r in range(2)]
    for sampler in ranks:
        sampler.set_position(3, 0)
    shards = [list(sampler) for sampler in ranks]
    assert [a + b for a, b in zip(*shards, strict=True)] == whole  # the shards make up each global batch
    assert not set(sum(shards[0], [])) & set(sum(shards[1], []))  # and no rank reads another's rows


class Counting(ImageSet):
    """Images whose every read is recorded."""

    def __init__(self, n: int) -> None:
        super().__init__((1, 2, 2), torch.uint8, torch.zeros(n, dtype=torch.long))
        self.read_rows: list[int] = []

    def read(self, rows: np.ndarray) -> torch.Tensor:
        self.read_rows += rows.tolist()
        return torch.from_numpy(rows % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def test_limit_reads_only_its_rows():
    data = Splits("counted", Counting(1000), TensorImages(torch.zeros(3, 1, 2, 2, dtype=torch.uint8),
                                                          torch.zeros(3, dtype=torch.long)))
    few = limit_training(data, 10)
    assert len(few.train) == 10 and data.train.read_rows == []  # nothing read by limiting
    chosen = few.train.rows.tolist()
    assert chosen == torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:10].tolist()
    images, _ = few.train.__getitems__([0, 9])
    assert data.train.read_rows == [chosen[0], chosen[9]]
    assert images[:, 0, 0, 0].tolist() == [chosen[0] % 256, chosen[9] % 256]


def test_a_new_style_plugin_dataset_loads_as_splits_of_files_read_when_asked(site, tmp_path):
    site.install("vaezoo-files", FILES, plugin="files")
    folder = write_image_files(tmp_path / "images", 60)
    data = load_dataset("files", folder, limit=15)
    assert isinstance(data, Splits) and data.input_shape == (1, 6, 6) and data.train.dtype == torch.uint8
    assert len(data.train) == 15 and len(data.test) == 20
    images, labels = data.train.__getitems__([0, 1])
    assert images.dtype == torch.uint8 and images.shape == (2, 1, 6, 6) and labels.dtype == torch.long


class Stream(torch.utils.data.IterableDataset):
    """n images in stream order, each noted in `given` as it is handed out."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x, self.given = x, []

    def __iter__(self):
        for i in range(len(self.x)):
            self.given.append(i)
            yield self.x[i]


class Steps(vaezoo.Callback):
    def __init__(self) -> None:
        self.per_epoch: dict[int, int] = {}

    def on_step_end(self, trainer, loss):
        self.per_epoch[trainer.state.epoch] = self.per_epoch.get(trainer.state.epoch, 0) + 1


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_dataset("digits").train_x[:200]


def test_fit_trains_on_an_iterable_dataset_a_pass_per_epoch_or_steps_per_epoch(digits):
    stream, steps = Stream(digits), Steps()
    run = vaezoo.fit(small_model(), stream, epochs=2, batch_size=50, callbacks=[steps])
    assert steps.per_epoch == {1: 4, 2: 4} and len(run.metrics) == 2
    assert stream.given[1:] != [] and len(stream.given) >= 400  # read anew each epoch (and once to check)
    stream, steps = Stream(digits), Steps()
    vaezoo.fit(small_model(), stream, epochs=2, batch_size=50, steps_per_epoch=3, callbacks=[steps])
    assert steps.per_epoch == {1: 3, 2: 3}  # the epochs end after 3 steps; the stream goes on where it stood
    with pytest.raises(VaezooError, match="needs images by index"):
        vaezoo.fit(small_model(), Stream(digits), epochs=1, binarize="static")
    with pytest.raises(VaezooError, match="the cosine schedule needs the number of steps in an epoch"):
        vaezoo.fit(small_model(), Stream(digits), epochs=1, schedule="cosine")
    vaezoo.fit(small_model(), Stream(digits), epochs=1, schedule="cosine", steps_per_epoch=2)


class Augmenting(torch.utils.data.Dataset):
    """A map Dataset that shifts each image by a random amount of brightness each time it is read."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x, self.reads = x, []

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        shift = torch.rand(()) * 0.1
        self.reads.append((i, float(shift)))
        return (self.x[i] * 0.9 + shift).clamp(0, 1)


def test_fit_reads_a_map_dataset_anew_every_epoch_so_augmentation_is_fresh(digits):
    data = Augmenting(digits)
    vaezoo.fit(small_model(), data, epochs=3, batch_size=64, workers=0)
    training_reads = data.reads[-3 * len(digits):]  # after the first items read once to check the data
    counts = np.bincount([i for i, _ in training_reads], minlength=len(digits))
    assert counts.tolist() == [3] * len(digits)  # every item read once per epoch
    shifts: dict[int, list[float]] = {}
    for i, shift in training_reads:
        shifts.setdefault(i, []).append(shift)
    assert all(len(set(s)) == 3 for s in shifts.values())  # a new augmentation every epoch


class Marked(torch.utils.data.Dataset):
    """Each read leaves a file naming the reading process and the item, in `folder`."""

    def __init__(self, x: torch.Tensor, folder: Path) -> None:
        self.x, self.folder = x, folder

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        with open(self.folder / f"{os.getpid()}-{i}-{len(os.listdir(self.folder))}", "w"):
            pass
        return self.x[i], i % 10


def test_fit_iterates_a_users_dataloader_as_it_is_with_its_workers(digits, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()

    def collate(items):  # the default collate would give the labels as they are; this one marks them
        return torch.stack([x for x, _ in items]), torch.tensor([100 + y for _, y in items])

    loader = torch.utils.data.DataLoader(Marked(digits, marks), batch_size=40, num_workers=2, collate_fn=collate,
                                         sampler=torch.utils.data.SequentialSampler(range(120)))
    steps = Steps()
    vaezoo.fit(small_model(), loader, epochs=2, callbacks=[steps])
    assert steps.per_epoch == {1: 3, 2: 3}  # its sampler (120 of the 200 images) and batch size
    readers = {name.split("-")[0] for name in os.listdir(marks)}
    assert str(os.getpid()) not in readers and len(readers) >= 2  # its workers (two per pass) read the items
    conditional = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8), latent_dim=2, num_classes=10)
    with pytest.raises(DataError, match="labels run 100..109, but this conditional model has 10 classes"):
        vaezoo.fit(conditional, loader, epochs=1)  # its collate function made the labels
    items = [int(name.split("-")[1]) for name in os.listdir(marks)]
    assert sorted(set(items)) == list(range(120))


class Faulty(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, bad: int) -> None:
        self.x, self.bad = x, bad

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        if i == self.bad:
            raise DataError(f"image {i} is unreadable")
        return self.x[i]


def test_a_data_error_in_a_worker_reaches_the_caller_as_its_one_line(digits):
    with pytest.raises(DataError) as info:
        vaezoo.fit(small_model(), Faulty(digits, bad=150), epochs=1, batch_size=32, workers=2)
    assert str(info.value) == "image 150 is unreadable"


def test_a_damaged_file_mid_epoch_is_one_line_and_the_run_resumes_to_the_uninterrupted_weights(site, tmp_path):
    site.install("vaezoo-files", FILES, plugin="files")
    folder = write_image_files(tmp_path / "images")
    config = lambda out, **more: TrainConfig(  # noqa: E731
        variant="vae-mlp", dataset="files", data_dir=str(folder), out=str(out), epochs=2, batch_size=10,
        checkpoint_every=3, overrides=dict(SMALL), **more)
    straight = train(config(tmp_path / "straight", workers=0), progress=False)
    good = (folder / "0090.npy").read_bytes()
    (folder / "0090.npy").write_bytes(b"\x93NUMPY garbage")  # training row 70: read in epoch 1
    with pytest.raises(DataError) as info:
        train(config(tmp_path / "run", workers=2), progress=False)
    assert str(info.value).startswith(f"{folder / '0090.npy'} is not a readable .npy file")
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
    (folder / "0090.npy").write_bytes(good)
    resume(str(tmp_path / "run"), progress=False, data_dir=str(folder))
    assert [m["epoch"] for m in read_metrics(tmp_path / "run")] == [1, 2]
    a, b = load_file(straight / "model.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


class Mixed(torch.utils.data.IterableDataset):
    """100 items, of which item `at` on has another shape (or dtype)."""

    def __init__(self, at: int, change: str) -> None:
        self.at, self.change = at, change

    def __iter__(self):
        for i in range(100):
            x = torch.zeros(1, 8, 8, dtype=torch.uint8)
            if i >= self.at:
                x = torch.zeros(1, 9, 8, dtype=torch.uint8) if self.change == "shape" else x.float()
            yield x


class Growing(ImageSet):
    """A split whose images read from row 50 on come out a pixel wider."""

    def __init__(self) -> None:
        super().__init__((1, 4, 4), torch.uint8, torch.zeros(80, dtype=torch.long))

    def read(self, rows: np.ndarray) -> torch.Tensor:
        return torch.zeros(len(rows), 1, 4, 5 if rows.max() >= 50 else 4, dtype=torch.uint8)


def test_items_that_change_shape_or_dtype_mid_stream_are_refused_with_their_index():
    with pytest.raises(DataError, match=r"^train_data: item 70 has shape \(1, 9, 8\); this model takes images of "
                                        r"shape \(1, 8, 8\)$"):
        vaezoo.fit(small_model(), Mixed(70, "shape"), epochs=1, batch_size=32)
    with pytest.raises(DataError, match=r"^train_data: item 45 is torch.float32, but the items before it are "
                                        "torch.uint8"):
        vaezoo.fit(small_model(), Mixed(45, "dtype"), epochs=1, batch_size=32)
    empty = TensorImages(torch.zeros(0, 1, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    trainer = Trainer(TrainConfig("vae-mlp", "growing", "unused", batch_size=10, workers=0),
                      Splits("growing", Growing(), empty), small_model((1, 4, 4)), None, False)
    with pytest.raises(DataError, match=r"^growing: the batch of training item \d+ \(batch \d of epoch 1\) came as "
                                        r"torch.uint8 \(10, 1, 4, 5\), not torch.uint8 \(10, 1, 4, 4\)"):
        trainer.fit()


def test_two_ranks_read_their_shards_and_binarize_them_as_one_process_does():
    x = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    data = Splits("grey", TensorImages(x, torch.zeros(50, dtype=torch.long)),
                  TensorImages(x[:5], torch.zeros(5, dtype=torch.long)))

    def first_batches(world: World, epoch: int) -> tuple[torch.Tensor, int]:
        trainer = Trainer(TrainConfig("vae-mlp", "grey", "unused", batch_size=16, seed=3), data,
                          small_model((1, 4, 4)), None, False, world=world)
        trainer.state.epoch = epoch
        loaded = next(trainer.batches.epoch(epoch, 1))  # the second global batch
        x, _, rows = trainer.batch(1, loaded)
        return x, rows

    for epoch in (1, 2):
        whole, rows = first_batches(World(), epoch)
        halves = [first_batches(World(rank=r, size=2), epoch) for r in range(2)]
        assert rows == 16 and [r for _, r in halves] == [16, 16]
        assert [len(h) for h, _ in halves] == [8, 8]
        assert torch.equal(torch.cat([h for h, _ in halves]), whole)


def test_workers_default_to_none_for_data_in_memory_and_to_the_cores_otherwise():
    cores = len(os.sched_getaffinity(0))
    assert auto_workers(in_memory=True) == 0 and auto_workers(in_memory=False) == max(0, min(4, cores - 1))
    empty = TensorImages(torch.zeros(0, 1, 2, 2, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    config = TrainConfig("vae-mlp", "counted", "unused", batch_size=10)
    memory = TensorImages(torch.zeros(30, 1, 2, 2, dtype=torch.uint8), torch.zeros(30, dtype=torch.long))
    for split, workers in ((Counting(30), auto_workers(in_memory=False)), (memory, 0), (Rows(memory, np.arange(9)), 0)):
        trainer = Trainer(config, Splits("counted", split, empty), small_model((1, 2, 2)), None, False)
        assert trainer.batches.loader.num_workers == workers
    config.workers = 2
    assert Trainer(config, Splits("counted", Counting(30), empty), small_model((1, 2, 2)), None,
                   False).batches.loader.num_workers == 2
