"""Run checkpoints: every array a run needs plus a JSON header, in one .npz written atomically."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from mnist_gan.atomic_files import atomic_write
from mnist_gan.errors import CheckpointError
from mnist_gan.run_folder import CHECKPOINT_FILE, TIMELINE_DIR

KEEP = 8  # kept at most (a classic run's checkpoint is ~30 MB); beyond it every other one goes, first and last stay
_META_KEY = "__meta__"


def save_checkpoint(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write arrays and meta to `path`; a process killed mid-write leaves the previous checkpoint intact."""
    buffer = io.BytesIO()
    # The header is a plain unicode array: loading it needs no pickle.
    np.savez(buffer, **arrays, **{_META_KEY: np.array(json.dumps(meta))})
    atomic_write(Path(path), buffer.getvalue())


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except Exception as e:  # a truncated or foreign file fails in zipfile, numpy or json
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    return arrays, meta


def load_meta(path: str | Path) -> dict:
    """Only the JSON header of a checkpoint (step, history, config...): no array is read."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(str(npz[_META_KEY]))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None


def keep_step_checkpoint(run_dir: Path, step: int) -> Path:
    """Keep the run's current checkpoint as the one of `step` (a hard link: no copy), thinning the timeline."""
    folder = Path(run_dir) / TIMELINE_DIR
    folder.mkdir(exist_ok=True)
    kept = folder / f"{step:07d}.npz"
    kept.unlink(missing_ok=True)
    try:
        os.link(Path(run_dir) / CHECKPOINT_FILE, kept)
    except OSError:  # a file system without hard links
        shutil.copyfile(Path(run_dir) / CHECKPOINT_FILE, kept)
    steps = sorted(step_checkpoints(run_dir))
    while len(steps) > KEEP:  # evenly thinner as the run grows: drop every other one between first and last
        for drop in steps[1:-1:2]:
            (folder / f"{drop:07d}.npz").unlink(missing_ok=True)
        steps = sorted(step_checkpoints(run_dir))
    return kept


def step_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Step -> kept checkpoint of a run (where forks can start)."""
    folder = Path(run_dir) / TIMELINE_DIR
    return {int(p.stem): p for p in folder.glob("*.npz") if p.stem.isdigit()} if folder.is_dir() else {}
