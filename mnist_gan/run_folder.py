"""A run folder's layout: every name it holds, the files named by step, and its lock.

A run folder is also a weights folder (model/generator.py names those files): the trainer writes the latest
sampler's weights beside its checkpoint. Everyone who reads or writes a run folder (the trainer, the app's training
process, TensorBoard, sweeps, the Hub, the laboratory) takes the names from here.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

from .errors import Busy

CHECKPOINT_FILE = "checkpoint.npz"  # every array the run needs, and its header (training/checkpoint.py)
TIMELINE_DIR = "checkpoints"  # kept checkpoints, one per step: where a fork can start
SAMPLES_DIR = "samples"  # the fixed-noise grid at each sample step, STEP.png
ATLAS_DIR = "atlas"  # the latent atlas at each sample step, STEP.npz
LAB_DIR = "lab"  # the evidence of each step taken by hand, STEP-KIND.npz
ALARMS_DIR = "alarms"  # the evidence of each collapse alarm, STEP.png
BEST_DIR = "best"  # the sampler at its best cFID so far: GAN quality peaks and then drifts (measured)
SNAPSHOTS_DIR = "snapshots"  # the sampler every snapshot_every steps (snapshots/0010000), to choose from later
SOURCE_FILE = "app_run.json"  # where the app's run took its data from, so a resumed run trains on the same images
LOG_FILE = "worker.log"  # the training process's own output
LOCK_FILE = "worker.lock"  # held by whichever process trains the run: two never train the same folder
EVENTS_FILE = "events.jsonl"  # a sweep trial's events, one JSON line each (training/events.py)
STARTS_FILE = "starts.jsonl"  # a sweep trial's starts: the resume's evidence
TRIAL_FILE = "trial.json"  # a sweep trial's status once it has one
TENSORBOARD_GLOB = "events.out.tfevents.*"  # what tf.summary writes, and TensorBoard and the Hub look for


def by_step(folder: Path, suffix: str) -> list[tuple[int, str]]:
    """(step, path) of the files in `folder` named by their step (0001000.png), in step order."""
    if not folder.is_dir():
        return []
    return sorted((int(p.stem), str(p)) for p in folder.glob(f"*{suffix}") if p.stem.isdigit())


def checkpointed(folder: Path) -> list[Path]:
    """The run folders in `folder` that hold a checkpoint."""
    return [p for p in folder.iterdir() if (p / CHECKPOINT_FILE).is_file()] if folder.is_dir() else []


def sample_paths(run_dir: Path) -> list[tuple[int, str]]:
    return by_step(Path(run_dir) / SAMPLES_DIR, ".png")


def atlas_paths(run_dir: Path) -> list[tuple[int, str]]:
    return by_step(Path(run_dir) / ATLAS_DIR, ".npz")


def tensorboard_files(folder: str | Path) -> list[Path]:
    """The TensorBoard event files directly in `folder`, oldest first."""
    folder = Path(folder)
    return sorted(folder.glob(TENSORBOARD_GLOB)) if folder.is_dir() else []


def run_of(weights_folder: str | Path) -> Path | None:
    """The run folder whose event files describe the model in `weights_folder`: the folder itself (a run folder
    is a weights folder), or the run of a run's best/ (its best sampler so far); None for a model without them."""
    folder = Path(weights_folder).resolve()
    if tensorboard_files(folder):
        return folder
    if folder.name == BEST_DIR and tensorboard_files(folder.parent):
        return folder.parent
    return None


def lock(run_dir: Path, wait_s: float = 0.0, busy: str = ""):
    """An exclusive lock on the run folder, held for the returned file's life (the OS drops it however the process
    ends). Waits up to `wait_s` for another process to let go, then raises Busy with `busy` (or a plain default)."""
    handle = open(Path(run_dir) / LOCK_FILE, "a")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise Busy(busy or f"another process is training {Path(run_dir).name}") from None
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
