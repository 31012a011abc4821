"""Meaningful directions in a generator's latent space, found from the model itself.

Draw a few thousand samples, measure simple things on each image (stroke thickness, slant, width, height, ...)
and, when a digit scorer is given (the app gives the shipped classifier's log-probabilities), how much each
image looks like each digit; then regress every measurement on z. The least-squares weight vector, normalised,
is the direction that changes that measurement most linearly: moving z along it makes strokes thicker, digits
wider, or a 4 more like a 9.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan.atomic_files import read_arrays, write_arrays
from mnist_gan.errors import InvalidInput
from mnist_gan.images import latents
from mnist_gan.model.architectures import NUM_CLASSES

MAX_DIRECTIONS = 16  # the latent explorer's slider count
DIRECTIONS_FILE = "directions.npz"  # in a weights folder: its directions, found once, for the weights they name


@dataclass(frozen=True)
class Direction:
    label: str  # what moving along +vector does, e.g. "thicker strokes"
    vector: np.ndarray  # unit vector in z space, float32 (latent_dim,)
    r2: float  # how much of the measurement a linear function of z explains (0..1)


def _moments(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image ink statistics of [-1, 1] images (n, 28, 28[, 1]): mass, centroid, second moments."""
    p = (np.asarray(images, np.float64).reshape(len(images), 28, 28) + 1.0) / 2.0  # ink in [0, 1]
    mass = p.sum(axis=(1, 2)) + 1e-6
    ys, xs = np.mgrid[0:28, 0:28].astype(np.float64)
    cx, cy = (p * xs).sum(axis=(1, 2)) / mass, (p * ys).sum(axis=(1, 2)) / mass
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    return {"p": p, "mass": mass, "cx": cx, "cy": cy, "xx": (p * dx * dx).sum(axis=(1, 2)) / mass,
            "yy": (p * dy * dy).sum(axis=(1, 2)) / mass, "xy": (p * dx * dy).sum(axis=(1, 2)) / mass}


def _thickness(m: dict) -> np.ndarray:
    # ink area over half the outline length: a stroke's width, independent of the digit's size
    p = m["p"]
    outline = np.abs(np.diff(p, axis=1)).sum(axis=(1, 2)) + np.abs(np.diff(p, axis=2)).sum(axis=(1, 2))
    return 2.0 * m["mass"] / (outline + 1e-6)


def _balance(m: dict, axis: int) -> np.ndarray:
    """(ink in the first half - ink in the second half) / all ink, halves along rows (1) or columns (2)."""
    first, second = np.split(m["p"], 2, axis=axis)
    return (first.sum(axis=(1, 2)) - second.sum(axis=(1, 2))) / m["mass"]


# label (what +direction does) -> measurement; in order of interest (the first ones are kept when space is short)
STYLE: dict[str, Callable[[dict], np.ndarray]] = {
    "thicker strokes": _thickness,
    "slant right": lambda m: -m["xy"] / (m["yy"] + 1e-6),  # image rows grow downwards: "/" has negative xy
    "wider": lambda m: np.sqrt(m["xx"]),
    "taller": lambda m: np.sqrt(m["yy"]),
    "more ink on top": lambda m: _balance(m, axis=1),
    "softer edges": lambda m: (4 * m["p"] * (1 - m["p"])).sum(axis=(1, 2)) / m["mass"],
    "more ink": lambda m: m["mass"],
    "more ink on the left": lambda m: _balance(m, axis=2),
}


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
    """Every STYLE measurement of [-1, 1] images, by label."""
    m = _moments(images)
    return {label: fn(m) for label, fn in STYLE.items()}


def regress(z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fits targets[:, j] ~ a_j + z.w_j: (unit w_j as rows (k, latent_dim), R^2 of each fit (k,))."""
    z = np.asarray(z, np.float64) - np.mean(z, axis=0)
    y = np.asarray(targets, np.float64).reshape(len(z), -1)
    y = y - y.mean(axis=0)
    # one solve for every target, (latent_dim, k); the tiny ridge keeps it solvable when n < latent_dim
    w = np.linalg.solve(z.T @ z + 1e-6 * len(z) * np.eye(z.shape[1]), z.T @ y)
    variance = y.var(axis=0)
    r2 = np.where(variance > 0, 1.0 - (y - z @ w).var(axis=0) / np.where(variance > 0, variance, 1.0), 0.0)
    norms = np.linalg.norm(w, axis=0)
    return (w / np.where(norms > 0, norms, 1.0)).T.astype(np.float32), r2


def find_directions(generator, seed: int = 0, n: int = 4000,
                    digit_scorer: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Direction]:
    """Up to MAX_DIRECTIONS labelled directions for `generator` (a weights.Generator), from n samples of `seed`.

    Unconditional models with a digit scorer get one "more like a k" direction per digit; conditional models
    choose the digit by label, so they get style directions only.
    """
    z = latents(seed, n, generator.config.latent_dim)
    images = generator.images(z)  # conditional generators cycle through the digits
    targets = measure(images)
    if digit_scorer is not None and not generator.config.conditional:
        scores = digit_scorer(images)
        scores = scores - scores.mean(axis=1, keepdims=True)  # "more like k" means: than like the other digits
        style = {label: targets[label] for label in list(targets)[:MAX_DIRECTIONS - NUM_CLASSES]}
        targets = style | {f"more like a {k}": scores[:, k] for k in range(NUM_CLASSES)}
    vectors, r2 = regress(z, np.stack(list(targets.values()), axis=1))
    return [Direction(label, v, float(r)) for label, v, r in zip(targets, vectors, r2)][:MAX_DIRECTIONS]


def save_directions(path: Path, directions: list[Direction], weights_sha256: str) -> None:
    """Keep a model's found directions beside its weights, naming the weights (their sha256) they were found for."""
    write_arrays(path, {"labels": np.array([d.label for d in directions]), "r2": np.array([d.r2 for d in directions]),
                        "vectors": np.stack([d.vector for d in directions]), "weights_sha256": np.array(weights_sha256)})


def load_directions(path: Path, weights_sha256: str) -> list[Direction] | None:
    """The directions kept at `path` if they were found for these weights (None: none, or for other weights)."""
    try:
        kept = read_arrays(path)
        if str(kept["weights_sha256"]) != weights_sha256:
            return None
        return [Direction(str(label), vector.astype(np.float32), float(r2))
                for label, vector, r2 in zip(kept["labels"], kept["vectors"], kept["r2"])]
    except (OSError, KeyError, ValueError):  # missing, unreadable or foreign: found again
        return None


def raw_directions(latent_dim: int, count: int = MAX_DIRECTIONS) -> list[Direction]:
    """The first `count` coordinate axes of z, for the explorer's raw mode."""
    eye = np.eye(latent_dim, dtype=np.float32)
    return [Direction(f"z[{i}]", eye[i], float("nan")) for i in range(min(count, latent_dim))]


def move(z: np.ndarray, directions: list[Direction], amounts) -> np.ndarray:
    """z plus amounts[i] units along directions[i] (amounts beyond the directions must be 0)."""
    amounts = np.asarray(amounts, np.float64).ravel()
    if not np.all(np.isfinite(amounts)):
        raise InvalidInput("slider values must be finite numbers (no NaN or infinity)")
    if np.any(amounts[len(directions):]):
        raise InvalidInput(f"this model has {len(directions)} directions: the amounts after them must be 0")
    out = np.asarray(z, np.float64).copy()
    for direction, amount in zip(directions, amounts):
        out += amount * direction.vector
    return out.astype(np.float32)
