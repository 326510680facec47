"""Sample quality from features of real and generated images (one row per image): FID (Heusel et al., 2017),
KID (Binkowski et al., 2018) and improved precision and recall (Kynkaanniemi et al., 2019)."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError
from vaezoo.metrics.inputs import as_matrix


def _pair(real: object, fake: object, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    r, f = as_matrix("real features", real), as_matrix("fake features", fake)
    if r.shape[1] != f.shape[1]:
        raise MetricInputError(f"real features have {r.shape[1]} columns and fake features {f.shape[1]}: use one feature extractor")
    for name, x in (("real", r), ("fake", f)):
        if len(x) < min_rows:
            raise MetricInputError(f"{name} features have {len(x)} rows; this metric needs at least {min_rows}")
    return r, f


def fid(real: object, fake: object) -> float:
    """Frechet distance between Gaussians fitted to the two feature sets: |mu_r - mu_f|^2 +
    tr(S_r + S_f - 2 (S_r S_f)^(1/2)); 0 for identical statistics."""
    r, f = _pair(real, fake, min_rows=2)
    mu_r, mu_f = r.mean(0), f.mean(0)
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    values, vectors = np.linalg.eigh(s_r)
    root_r = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    # tr (S_r S_f)^(1/2) = sum of square roots of the eigenvalues of S_r^(1/2) S_f S_r^(1/2), which is symmetric
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_r @ s_f @ root_r), 0, None)).sum()
    return float(max(((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * cross, 0.0))


def kid(real: object, fake: object, *, subsets: int = 50, subset_size: int = 1000, seed: int = 0) -> float:
    """Mean over random subsets of the unbiased squared MMD with the kernel (x.y / d + 1)^3; about 0 for one
    distribution (it can dip below 0)."""
    r, f = _pair(real, fake, min_rows=2)
    m = min(subset_size, len(r), len(f))
    rng = np.random.default_rng(seed)
    d = r.shape[1]
    total = 0.0
    for _ in range(subsets):
        x, y = r[rng.choice(len(r), m, replace=False)], f[rng.choice(len(f), m, replace=False)]
        k_xx, k_yy, k_xy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = m * (m - 1)
        total += (k_xx.sum() - np.trace(k_xx)) / off + (k_yy.sum() - np.trace(k_yy)) / off - 2 * k_xy.mean()
    return float(total / subsets)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip((a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T, 0, None)


def _radii(x: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """Squared distance of each row of x to its k-th nearest other row."""
    return np.concatenate([
        np.partition(_squared_distances(x[i : i + chunk], x), k, axis=1)[:, k] for i in range(0, len(x), chunk)
    ])


def _covered(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int) -> np.ndarray:
    """Whether each point lies in at least one ball (centre, squared radius)."""
    return np.concatenate([
        (_squared_distances(points[i : i + chunk], centres) <= radii[None]).any(1) for i in range(0, len(points), chunk)
    ])


def precision_recall(real: object, fake: object, *, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """(precision, recall): the share of fake points inside the real manifold (the union of balls reaching
    each real point's k-th nearest real neighbour), and of real points inside the fake manifold."""
    r, f = _pair(real, fake, min_rows=k + 1)
    r_radii, f_radii = _radii(r, k, chunk), _radii(f, k, chunk)
    # squared radii plus a relative tolerance, so that a point lying on a ball's surface counts as inside
    precision = _covered(f, r, r_radii * (1 + 1e-9) + 1e-12, chunk).mean()
    recall = _covered(r, f, f_radii * (1 + 1e-9) + 1e-12, chunk).mean()
    return float(precision), float(recall)
