"""DiffAugment (Zhao et al. 2020) for D's inputs: differentiable, so G learns through it, and traceable by XLA.

Real and generated images get the same random transformations, so D cannot tell them apart by the augmentation,
and G is not pushed to draw augmented digits. Randomness is stateless, keyed by (seed, step, stream), so a run
resumed from its checkpoint draws the same augmentations as one never stopped.
"""

from __future__ import annotations

import tensorflow as tf

TRANSLATION = 0.125  # up to 1/8 of the side each way (DiffAugment's ratio): +-4 pixels on 28
CUTOUT = 0.5  # a square of half the side (DiffAugment's ratio): 14 x 14


def _shift_matrices(shift, size: int):
    """(B, size, size) one-hot matrices M with (M @ v)[i] = v[i - shift]: a shift with zero fill."""
    rows = tf.range(size)[None, :, None]
    cols = tf.range(size)[None, None, :]
    return tf.cast(tf.equal(cols, rows - shift[:, None, None]), tf.float32)


def translation(images, seed, ratio: float = TRANSLATION):
    """Shift each image by a random whole number of pixels in x and y, filling with background (-1)."""
    size = images.shape[1]
    limit = int(size * ratio + 0.5)
    shifts = tf.random.stateless_uniform((2, tf.shape(images)[0]), seed, -limit, limit + 1, dtype=tf.int32)
    # a shift as two batched one-hot matmuls instead of a gather: XLA-friendly and cheap at 28 x 28
    rows, cols = _shift_matrices(shifts[0], size), _shift_matrices(shifts[1], size)
    x = images[..., 0] + 1.0  # background 0, so the zero fill is background
    x = tf.matmul(tf.matmul(rows, x), cols, transpose_b=True)
    return (x - 1.0)[..., None]


def cutout(images, seed, ratio: float = CUTOUT):
    """Set a random square of each image to 0 (grey in [-1, 1]), as DiffAugment's cutout does."""
    size = images.shape[1]
    side = int(size * ratio + 0.5)
    centres = tf.random.stateless_uniform((2, tf.shape(images)[0]), seed, 0, size + (1 - side % 2), dtype=tf.int32)
    grid = tf.range(size)[None, :]
    start = centres - side // 2  # rows and columns start .. start + side - 1, clipped by the border
    inside_y = (grid >= start[0][:, None]) & (grid < start[0][:, None] + side)
    inside_x = (grid >= start[1][:, None]) & (grid < start[1][:, None] + side)
    mask = 1.0 - tf.cast(inside_y[:, :, None] & inside_x[:, None, :], images.dtype)
    return images * mask[..., None]


POLICIES = {"translation": translation, "cutout": cutout}


def diff_augment(images, policy: str, seed):
    """Apply the comma-separated `policy` in order; `seed` is a stateless seed, shape (2,) int32."""
    for i, name in enumerate(filter(None, policy.split(","))):
        images = POLICIES[name](images, tf.random.experimental.stateless_fold_in(seed, i))
    return images
