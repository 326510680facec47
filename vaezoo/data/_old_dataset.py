"""Interim, until the data branch's load_dataset returns Splits: an old tensor Dataset as Splits (a Splits is
returned as it is). The integrator drops this module and its call sites."""
from __future__ import annotations

from vaezoo.data.splits import Splits, TensorImages


def as_splits(data) -> Splits:
    """`data` as Splits: a vaezoo.Dataset's tensors wrapped in TensorImages, a Splits unchanged."""
    if isinstance(data, Splits):
        return data
    factors = lambda f: None if f is None else f.numpy()  # noqa: E731
    return Splits(data.name, TensorImages(data.train_x, data.train_y, factors(data.train_factors)),
                  TensorImages(data.test_x, data.test_y, factors(data.test_factors)), tuple(data.factor_names))
