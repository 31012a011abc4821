"""Collapse alarms: from signals a run already has, a warning with its evidence and a remedy to try as a fork.

- **D dominates**: over the last WINDOW steps, D calls both real and generated images right at least DOMINANT of
  the time. G then learns little from D's gradient (it is flat where D is sure); the classic remedy is a slower D:
  fork with D's learning rate halved (and one D update per G update).
- **Mode collapse**: the run had drawn many kinds of digits and lost them: at the latest evaluation the judge finds
  few classes (the class histogram's entropy below LOW_ENTROPY of a uniform one's) after an earlier one found them
  all (above DIVERSE), or many near duplicates among the samples (more than DUPLICATES of them have a neighbour
  closer, in the judge's feature space, than 99% of real digits have: ~1% for real digits) after an earlier
  evaluation had few. A young run's blobs are alike and read as one digit too (measured: "8" for all at step 250 of
  the recommended recipe): that is not a collapse, it never had the diversity to lose. The remedy forks from the
  last kept checkpoint, before it set in, with G's learning rate halved.
Both thresholds were set between what a provoked collapse and the default recipe's first steps measure (tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

WINDOW = 500  # steps of history D's accuracies are averaged over
DOMINANT = 0.97
LOW_ENTROPY, DIVERSE = 0.6, 0.9  # shares of log(10)
DUPLICATES = 0.15


@dataclass(frozen=True)
class Finding:
    kind: str  # "d_dominates" or "mode_collapse"
    message: str
    evidence: dict
    remedy: Callable  # config -> the changes to fork with


def check(history: list[dict], quality: list[dict], config) -> Finding | None:
    """What is going wrong with a run, from its history rows and quality rows; None when nothing is."""
    latest = quality[-1] if quality else {}
    histogram = latest.get("class_histogram")
    entropy = _entropy(histogram) if histogram else None
    duplicates = latest.get("duplicates")
    was_diverse = any(_entropy(q["class_histogram"]) >= DIVERSE for q in quality[:-1] if q.get("class_histogram"))
    was_distinct = any(q.get("duplicates") is not None and q["duplicates"] < DUPLICATES / 3 for q in quality[:-1])
    if (entropy is not None and entropy < LOW_ENTROPY and was_diverse) or \
            (duplicates is not None and duplicates > DUPLICATES and was_distinct):
        shares = ", ".join(f"{d}: {s:.0%}" for d, s in enumerate(histogram or []) if s >= 0.05)
        return Finding("mode_collapse",
                       f"mode collapse at step {latest['step']:,}: the judge reads {shares or 'few digits'} "
                       f"(entropy {0 if entropy is None else entropy:.0%} of uniform) and "
                       f"{0 if duplicates is None else duplicates:.0%} of the samples have a near duplicate "
                       "(real digits: ~1%)",
                       {"entropy": entropy, "duplicates": duplicates, "class_histogram": histogram},
                       lambda c: {"lr_g": c.lr_g / 2})
    recent = [row for row in history if row.get("d_acc_real") is not None and row.get("d_acc_fake") is not None
              and row["step"] > history[-1]["step"] - WINDOW] if history else []
    if recent and history[-1]["step"] >= WINDOW:
        real = float(np.mean([row["d_acc_real"] for row in recent]))
        fake = float(np.mean([row["d_acc_fake"] for row in recent]))
        if real >= DOMINANT and fake >= DOMINANT:
            return Finding("d_dominates",
                           f"D dominates: over the last {WINDOW} steps it called {real:.0%} of real and {fake:.0%} "
                           "of generated images right, so G gets almost no gradient to learn from",
                           {"d_acc_real": real, "d_acc_fake": fake},
                           lambda c: {"lr_d": c.lr_d / 2, **({"d_steps": 1} if c.d_steps > 1 else {})})
    return None


def save_evidence(path: Path, sampler, evaluator, pairs: list[list[int]]) -> Path:
    """The near-duplicate pairs of the latest evaluation, side by side (a row per pair), as a PNG."""
    from mnist_gan.atomic_files import atomic_write
    from mnist_gan.images import encode_png, make_grid, to_uint8

    z, labels = evaluator.inputs(sampler.config)
    chosen = [i for pair in pairs for i in pair]
    images = to_uint8(sampler.images(z[chosen], None if labels is None else labels[chosen]))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, encode_png(make_grid(images, rows=len(pairs), cols=2, scale=2)), sync=False)
    return path


def _entropy(histogram) -> float:
    """The histogram's entropy as a share of a uniform one's (1: every digit equally often)."""
    h = np.asarray(histogram, np.float64)
    h = h[h > 0]
    return float(-(h * np.log(h)).sum() / math.log(len(histogram)))
