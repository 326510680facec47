"""The feature network behind vaezoo's sample-quality metrics: a small CNN that vaezoo trains on a dataset's
training labels, deterministically (fixed seed, one thread, on the CPU), and caches by dataset name, a hash
of the data and the network's version. Its penultimate layer gives the features.

These are domain features: FID, KID and precision/recall computed on them compare models within vaezoo on
one dataset, not with figures computed on Inception features (whose weights vaezoo never downloads).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vaezoo.atomic import atomic_write_text
from vaezoo.cache import cache_dir
from vaezoo.errors import DataError

VERSION = 1
FEATURES = 128
STEPS = 1000  # training steps of batch 128


class FeatureNet(nn.Module):
    """Three stride-2 3x3 convolutions (16, 32, 64 channels), pooled to 4x4, a dense layer of FEATURES units,
    a linear head: cheap enough to train on one CPU thread in a minute or two."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = input_shape[0]
        for out in (16, 32, 64):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.ReLU()]
            channels = out
        self.body = nn.Sequential(
            *layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Penultimate-layer features [N, FEATURES] of images [N, C, H, W], in batches."""
        device = next(self.parameters()).device
        return torch.cat([self.body(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@dataclass
class FeatureExtractor:
    """A trained FeatureNet with what it was trained on and how well it classifies held-out images."""

    net: FeatureNet
    dataset: str
    data_hash: str
    test_accuracy: float
    steps: int

    def describe(self) -> dict:
        return {"network": f"vaezoo FeatureNet v{VERSION}", "dataset": self.dataset, "data_hash": self.data_hash,
                "test_accuracy": self.test_accuracy, "training_steps": self.steps, "features": FEATURES}


def data_hash(train_x: torch.Tensor, train_y: torch.Tensor) -> str:
    """SHA-256 (first 16 hex digits) of the training images and labels."""
    digest = hashlib.sha256()
    for t in (train_x, train_y):
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _accuracy(net: FeatureNet, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        predicted = torch.cat([net(x[i : i + 500]).argmax(1) for i in range(0, len(x), 500)])
    return float((predicted == y).float().mean())


def train_feature_net(
    train_x: torch.Tensor, train_y: torch.Tensor, steps: int = STEPS, batch_size: int = 128, seed: int = 0
) -> FeatureNet:
    """Train a FeatureNet to classify train_y from train_x with Adam, on one CPU thread from a fixed seed, so
    that the same data always gives the same weights."""
    classes = int(train_y.max()) + 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = FeatureNet(tuple(train_x.shape[1:]), classes)
            optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
            generator = torch.Generator().manual_seed(seed)
            order = torch.randperm(len(train_x), generator=generator)
            position = 0
            for _ in range(steps):
                if position + batch_size > len(order):
                    order, position = torch.randperm(len(train_x), generator=generator), 0
                rows = order[position : position + batch_size]
                position += batch_size
                loss = nn.functional.cross_entropy(net(train_x[rows]), train_y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def feature_extractor(data, steps: int | None = None, progress: bool = False) -> FeatureExtractor:
    """The FeatureNet of a Dataset (trained on its training split and labels), from the cache or trained and
    cached now; its test accuracy is measured on the held-out split."""
    steps = steps or STEPS
    labels = data.train_y
    if labels.dim() != 1 or len(torch.unique(labels)) < 2:
        raise DataError(f"{data.name}: the sample-quality features need class labels with at least two classes")
    key = data_hash(data.train_x, labels)
    stem = f"{data.name.replace(':', '_').replace('/', '_')}-{key}-v{VERSION}"
    folder = cache_dir("classifiers")
    weights, record = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    if weights.is_file() and record.is_file():
        info = json.loads(record.read_text(encoding="utf-8"))
        net = FeatureNet(tuple(data.train_x.shape[1:]), info["classes"])
        net.load_state_dict(load_file(str(weights)))
        return FeatureExtractor(net.eval(), data.name, key, info["test_accuracy"], info["steps"])
    if progress:
        print(f"training the sample-quality feature network on {data.name} ({steps} steps, cached in {folder})")
    net = train_feature_net(data.train_x, labels, steps)
    accuracy = _accuracy(net, data.test_x, data.test_y)
    _save(net, weights)
    atomic_write_text(record, json.dumps({"dataset": data.name, "data_hash": key, "version": VERSION,
                                          "classes": net.head.out_features, "test_accuracy": accuracy,
                                          "steps": steps}, indent=2) + "\n")
    return FeatureExtractor(net, data.name, key, accuracy, steps)


def _save(net: FeatureNet, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    tmp.replace(path)
