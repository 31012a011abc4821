"""Steps taken by hand while a run is paused, each looked at on the very batch it used.

A D step, a G step, one iteration (D, then G) or ten (the compiled call the run itself makes). Each is a real step
of the run: it counts (one step for a D, a G or a whole iteration; ten for ten), it is in the history (marked as
taken by hand) and in the checkpoint. Its evidence goes to the run folder's lab/ as an .npz (the images, D's scores
before and after), its numbers into the Inspected event: D's scores and accuracies before and after, the loss in
its real and fake parts, and each layer's gradient norm.
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


def take(trainer, kind: str) -> None:
    """Take one step of `kind` on `trainer`'s run (which is paused), record it and publish what it did."""
    gan = trainer.gan
    threshold = gan.loss.threshold
    summary: dict = {}
    arrays: dict[str, np.ndarray] = {}
    metrics: dict = {}
    if kind == "10":
        z, labels = trainer.sample_z[:SHOWN], trainer.sample_labels
        labels = None if labels is None else labels[:SHOWN].reshape(-1, 1)
        before = trainer.sampler.images(z, labels)
        scores_before = gan.scores(before, _labels(labels, len(z)))
        values = gan.iterate(*trainer._draw(10))
        after = trainer.sampler.images(z, labels)
        scores_after = gan.scores(after, _labels(labels, len(z)))
        metrics = dict(zip(("d_loss_real", "d_loss_fake", "g_loss", "d_acc_real", "d_acc_fake"),
                           values.mean(axis=0).tolist()))
        arrays.update(before=to_uint8(before), after=to_uint8(after), scores_before=scores_before,
                      scores_after=scores_after)
        summary.update(score_before=float(scores_before.mean()), score_after=float(scores_after.mean()),
                       **{k: round(float(v), 5) for k, v in metrics.items()})
        trainer.step += 10
    else:
        real, real_labels, z_fake, fake_labels, z_gen, gen_labels = (a[0] for a in trainer._draw(1))
        if kind in ("d", "iteration"):
            d = gan.inspect_d_step(real[0], real_labels[0], z_fake[0], fake_labels[0])
            acc = {"real": float(np.mean(d["real_before"] > threshold)),
                   "fake": float(np.mean(d["fake_before"] <= threshold))}
            acc_after = {"real": float(np.mean(d["real_after"] > threshold)),
                         "fake": float(np.mean(d["fake_after"] <= threshold))}
            metrics.update(d_loss_real=d["d_loss_real"], d_loss_fake=d["d_loss_fake"], d_acc_real=acc["real"],
                           d_acc_fake=acc["fake"])
            arrays.update(real=to_uint8(d["real"][:SHOWN]), fake=to_uint8(d["fake"][:SHOWN]),
                          **{k: d[k][:SHOWN] for k in ("real_before", "real_after", "fake_before", "fake_after")})
            summary["d"] = {"score_real": [_mean(d["real_before"]), _mean(d["real_after"])],
                            "score_fake": [_mean(d["fake_before"]), _mean(d["fake_after"])],
                            "accuracy_real": [acc["real"], acc_after["real"]],
                            "accuracy_fake": [acc["fake"], acc_after["fake"]],
                            "loss_real": round(d["d_loss_real"], 5), "loss_fake": round(d["d_loss_fake"], 5),
                            "gradient_norms": _rounded(d["d_norms"])}
        if kind in ("g", "iteration"):
            g = gan.inspect_g_step(z_gen, gen_labels)
            metrics["g_loss"] = g["g_loss"]
            arrays.update(g_before=to_uint8(g["before"][:SHOWN]), g_after=to_uint8(g["after"][:SHOWN]),
                          g_scores_before=g["scores_before"][:SHOWN], g_scores_after=g["scores_after"][:SHOWN])
            summary["g"] = {"score": [_mean(g["scores_before"]), _mean(g["scores_after"])],
                            "loss": round(g["g_loss"], 5), "gradient_norms": _rounded(g["g_norms"]),
                            "pixel_change": float(np.mean(np.abs(g["after"] - g["before"])) / 2)}
        trainer.step += 1
    trainer._record(metrics, rate=None, manual=kind)
    path = save(trainer.run_dir, trainer.step, kind, arrays) if trainer.run_dir else None
    trainer._publish(Inspected(trainer.step, kind, str(path) if path else None, summary))
    trainer._periodic()
    trainer.save()  # a step by hand is part of the run: a resume or a fork from here includes it


def refused(trainer, kind: str, reason: str) -> Inspected:
    """The event that says a step by hand was not taken, and why."""
    return Inspected(trainer.step, kind, None, {"refused": reason})


def save(run_dir: Path, step: int, kind: str, arrays: dict[str, np.ndarray]) -> Path:
    """The evidence of a step by hand, as lab/<step>-<kind>.npz in the run folder."""
    return write_arrays(Path(run_dir) / LAB_DIR / f"{step:07d}-{kind}.npz", arrays)


def load(path: str | Path) -> dict[str, np.ndarray]:
    """The evidence a step by hand saved."""
    return read_arrays(path)


def _labels(labels, n: int) -> np.ndarray:
    return np.zeros((n, 1), np.int32) if labels is None else np.asarray(labels, np.int32).reshape(-1, 1)


def _mean(values: np.ndarray) -> float:
    return round(float(np.mean(values)), 5)


def _rounded(norms: dict[str, float]) -> dict[str, float]:
    return {layer: round(value, 6) for layer, value in norms.items()}
