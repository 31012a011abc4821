"""What a step taken by hand did, measured on the very batch it used.

A D step, a G step, one iteration (D, then G) or ten (the compiled call the run itself makes), taken by the trainer
(`Trainer.step_by_hand`) while the run is paused. Each is a real step of the run. This module turns the step's
before/after record into its numbers (the Inspected event's summary: D's scores and accuracies before and after, the
loss in its real and fake parts, each layer's gradient norm) and its evidence (the run folder's lab/, an .npz of the
images and D's scores before and after).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_gan.atomic_files import read_arrays, write_arrays
from mnist_gan.images import to_uint8
from mnist_gan.run_folder import LAB_DIR

from .events import Inspected

KINDS = ("d", "g", "iteration", "10")
SHOWN = 16  # images of a batch kept as evidence


def ten_iterations(before: np.ndarray, after: np.ndarray, scores_before: np.ndarray, scores_after: np.ndarray,
                   values: np.ndarray) -> tuple[dict, dict, dict]:
    """What ten iterations did to the run's fixed digits: (metrics, summary, evidence arrays). `values`: the
    compiled call's (10, METRICS) losses and accuracies."""
    metrics = dict(zip(("d_loss_real", "d_loss_fake", "g_loss", "d_acc_real", "d_acc_fake"),
                       values.mean(axis=0).tolist()))
    arrays = {"before": to_uint8(before), "after": to_uint8(after), "scores_before": scores_before,
              "scores_after": scores_after}
    summary = {"score_before": float(scores_before.mean()), "score_after": float(scores_after.mean()),
               **{k: round(float(v), 5) for k, v in metrics.items()}}
    return metrics, summary, arrays


def d_step(d: dict, threshold: float) -> tuple[dict, dict, dict]:
    """What a D step did on its own batch (GAN.inspect_d_step's record): (metrics, summary, evidence arrays)."""
    acc = {"real": float(np.mean(d["real_before"] > threshold)), "fake": float(np.mean(d["fake_before"] <= threshold))}
    acc_after = {"real": float(np.mean(d["real_after"] > threshold)),
                 "fake": float(np.mean(d["fake_after"] <= threshold))}
    metrics = {"d_loss_real": d["d_loss_real"], "d_loss_fake": d["d_loss_fake"], "d_acc_real": acc["real"],
               "d_acc_fake": acc["fake"]}
    arrays = {"real": to_uint8(d["real"][:SHOWN]), "fake": to_uint8(d["fake"][:SHOWN]),
              **{k: d[k][:SHOWN] for k in ("real_before", "real_after", "fake_before", "fake_after")}}
    summary = {"score_real": [_mean(d["real_before"]), _mean(d["real_after"])],
               "score_fake": [_mean(d["fake_before"]), _mean(d["fake_after"])],
               "accuracy_real": [acc["real"], acc_after["real"]], "accuracy_fake": [acc["fake"], acc_after["fake"]],
               "loss_real": round(d["d_loss_real"], 5), "loss_fake": round(d["d_loss_fake"], 5),
               "gradient_norms": _rounded(d["d_norms"])}
    return metrics, summary, arrays


def g_step(g: dict) -> tuple[dict, dict, dict]:
    """What a G step did to its own noise batch (GAN.inspect_g_step's record): (metrics, summary, evidence)."""
    arrays = {"g_before": to_uint8(g["before"][:SHOWN]), "g_after": to_uint8(g["after"][:SHOWN]),
              "g_scores_before": g["scores_before"][:SHOWN], "g_scores_after": g["scores_after"][:SHOWN]}
    summary = {"score": [_mean(g["scores_before"]), _mean(g["scores_after"])], "loss": round(g["g_loss"], 5),
               "gradient_norms": _rounded(g["g_norms"]),
               "pixel_change": float(np.mean(np.abs(g["after"] - g["before"])) / 2)}
    return {"g_loss": g["g_loss"]}, summary, arrays


def refused(step: int, kind: str, reason: str) -> Inspected:
    """The event that says a step by hand was not taken, and why."""
    return Inspected(step, kind, None, {"refused": reason})


def save(run_dir: Path, step: int, kind: str, arrays: dict[str, np.ndarray]) -> Path:
    """The evidence of a step by hand, as lab/<step>-<kind>.npz in the run folder."""
    return write_arrays(Path(run_dir) / LAB_DIR / f"{step:07d}-{kind}.npz", arrays)


def load(path: str | Path) -> dict[str, np.ndarray]:
    """The evidence a step by hand saved."""
    return read_arrays(path)


def _mean(values: np.ndarray) -> float:
    return round(float(np.mean(values)), 5)


def _rounded(norms: dict[str, float]) -> dict[str, float]:
    return {layer: round(value, 6) for layer, value in norms.items()}
