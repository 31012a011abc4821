"""A classifier small enough to read in a test: can simple statistics of images tell two sets apart?"""

from __future__ import annotations

import numpy as np


def pixel_statistics(images: np.ndarray) -> np.ndarray:
    """Per uint8 image, what betrays how pixels were made rather than what they show: the brightest and faintest
    ink, how many grey levels it uses, its share of exact whites, speckle away from the strokes, and grey levels
    of a coarse grid (features, one row per image)."""
    rows = []
    for image in np.asarray(images, np.uint8):
        ink = image[image > 0]
        strokes = image >= 128
        near = np.zeros_like(strokes)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= np.roll(np.roll(strokes, dy, 0), dx, 1)
        rows.append([image.max() / 255, (ink.min() if ink.size else 0) / 255, len(np.unique(image)) / 256,
                     (ink == 255).mean() if ink.size else 0, ((image > 0) & ~near).mean(),
                     (ink % 17 == 0).mean() if ink.size else 0])
    return np.array(rows)


def held_out_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0, steps: int = 3_000) -> float:
    """Accuracy on a held-out half of a logistic regression fitted on the other half (plain gradient descent on
    standardised features)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    x, y = np.asarray(features, float)[order], np.asarray(labels, float)[order]
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    half = len(y) // 2
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x[:half] @ w + b)))
        w -= 0.1 * (x[:half].T @ (p - y[:half]) / half + 1e-3 * w)
        b -= 0.1 * float(np.mean(p - y[:half]))
    return float(np.mean(((x[half:] @ w + b) > 0) == y[half:]))
