"""The latent atlas: one fixed 2-D slice of latent space, tiled with the samples the generator draws there.

The slice is a patch of the sphere where N(0, I) latents live, around a centre and along two directions that the
run's seed fixes (see latents()). Each of the SIZE x SIZE tiles
is tinted by D's score of its sample (red: D calls it generated; green: real) and labelled with the digit the
shipped classifier reads in it. Drawn at every sample step of a run, the same slice each time, the atlas shows digit
territories forming and D's "fake" regions moving. Class-conditional models draw the digit 0 everywhere (the label
picks the digit; the slice shows one digit's styles).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_gan.atomic_files import read_arrays, write_arrays
from mnist_gan.images import to_uint8, upscale
from mnist_gan.run_folder import ATLAS_DIR

SIZE, EXTENT = 12, 1.5
FAKE_TINT, REAL_TINT = np.array([150, 30, 30]), np.array([25, 120, 55])


def plane(seed: int, latent_dim: int) -> np.ndarray:
    """(3, latent_dim): the slice's centre and two directions, orthonormal, fixed by the seed."""
    basis = np.random.default_rng([seed, 2024]).standard_normal((latent_dim, 3))
    return np.linalg.qr(basis)[0].T.astype(np.float32)


def latents(seed: int, latent_dim: int) -> np.ndarray:
    """(SIZE * SIZE, latent_dim): the tiles' latents, row by row (top row: +EXTENT along the second direction).

    A flat slice through 0 would stay where training never looks (a N(0, I) latent has norm ~sqrt(latent_dim), and
    near 0 a generator draws one blurred average digit), so the slice is a patch of that sphere instead: the point
    centre + u * first + v * second, for u, v in [-EXTENT, EXTENT], scaled to norm sqrt(latent_dim) (about 65
    degrees of arc from the centre to a corner's side)."""
    steps = np.linspace(-EXTENT, EXTENT, SIZE, dtype=np.float32)
    v, u = np.meshgrid(steps[::-1], steps, indexing="ij")
    centre, first, second = plane(seed, latent_dim)
    z = centre + u.reshape(-1, 1) * first + v.reshape(-1, 1) * second
    return (z * np.sqrt(latent_dim) / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def draw(sampler, gan, config, classifier=None) -> dict[str, np.ndarray]:
    """The atlas now: `sampler`'s (a Generator) uint8 tiles, D's scores, the judge's digits (-1 without a judge),
    D's threshold."""
    z = latents(config.seed, config.latent_dim)
    labels = np.zeros((len(z), 1), np.int32)  # conditional models: the digit 0 everywhere
    images = sampler.images(z, labels if config.conditional else None)
    scores = gan.scores(images, labels)
    digits = classifier.predict(images)[0].argmax(axis=1) if classifier is not None else np.full(len(z), -1)
    return {"images": to_uint8(images), "scores": scores.astype(np.float32), "digits": digits.astype(np.int8),
            "threshold": np.float32(gan.loss.threshold), "probability": np.bool_(gan.loss.activation == "sigmoid")}


def save(run_dir: Path, step: int, tiles: dict[str, np.ndarray]) -> Path:
    return write_arrays(Path(run_dir) / ATLAS_DIR / f"{step:07d}.npz", tiles)


def load(path: str | Path) -> dict[str, np.ndarray]:
    return read_arrays(path)


def realness(tiles: dict[str, np.ndarray]) -> np.ndarray:
    """How real D finds each tile, in [0, 1] (0.5 at its threshold): its probability, or its logit squashed."""
    scores = tiles["scores"].astype(np.float64)
    if bool(tiles["probability"]):
        return np.clip(scores, 0.0, 1.0)
    return 1.0 / (1.0 + np.exp(-(scores - float(tiles["threshold"]))))


def render(tiles: dict[str, np.ndarray], scale: int = 3) -> np.ndarray:
    """An RGB image of the atlas: tiles tinted by D's verdict, each labelled with the judge's digit."""
    from PIL import Image, ImageDraw

    ink = tiles["images"].astype(np.float32) / 255.0  # (n, 28, 28), white strokes
    t = realness(tiles)[:, None, None, None]
    tint = (1 - t) * FAKE_TINT + t * REAL_TINT  # (n, 1, 1, 3)
    rgb = ink[..., None] * 255.0 + (1 - ink[..., None]) * tint
    tile = 28 * scale
    rgb = upscale(np.moveaxis(rgb, -1, 1), scale)  # (n, 3, tile, tile)
    canvas = np.zeros((SIZE * (tile + 1) + 1, SIZE * (tile + 1) + 1, 3), np.uint8)
    for i, image in enumerate(np.moveaxis(rgb, 1, -1)):
        r, c = divmod(i, SIZE)
        canvas[1 + r * (tile + 1): 1 + r * (tile + 1) + tile, 1 + c * (tile + 1): 1 + c * (tile + 1) + tile] = image
    picture = Image.fromarray(canvas)
    pen = ImageDraw.Draw(picture)
    for i, digit in enumerate(tiles["digits"]):
        if digit >= 0:
            r, c = divmod(i, SIZE)
            pen.text((3 + c * (tile + 1), 1 + r * (tile + 1)), str(int(digit)), fill=(255, 230, 90))
    return np.asarray(picture)
