"""Run checkpoints: every array a run needs plus its metadata (`RunMeta`), in one .npz written atomically."""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mnist_gan.atomic_files import atomic_write
from mnist_gan.config import GANConfig
from mnist_gan.errors import CheckpointError
from mnist_gan.run_folder import CHECKPOINT_FILE, TIMELINE_DIR

KEEP = 8  # kept at most (a classic run's checkpoint is ~30 MB); beyond it every other one goes, first and last stay
_META_KEY = "__meta__"


@dataclass(frozen=True)
class RunMeta:
    """Everything a run is besides its arrays: what a resume, a fork, the app's status and a comparison read. The
    checkpoint's config is the run's one authority (gan_config.json beside it is a copy)."""

    config: GANConfig
    step: int
    elapsed: float = 0.0  # training seconds, pauses excluded, across resumes
    rng: dict | None = None  # the data and noise stream's state (numpy's bit generator)
    history: list[dict] = field(default_factory=list)  # one Step row per compiled call
    incidents: list[dict] = field(default_factory=list)  # divergences and what was done about them
    best: dict = field(default_factory=dict)  # step, cFID and wall time of the best evaluation so far
    edits: list[dict] = field(default_factory=list)  # live edits: step, changes, before
    quality: list[dict] = field(default_factory=list)  # every evaluation
    origin: dict = field(default_factory=dict)  # a fork's parent run, step and changes
    alarms: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, meta: dict) -> RunMeta:
        """Read back; a checkpoint written before a field existed has that field's default."""
        known = {k: meta[k] for k in cls.__dataclass_fields__ if k in meta and k != "config"}
        return cls(config=GANConfig.from_dict(meta["config"]), **known)

    def replace(self, **changes) -> RunMeta:
        return replace(self, **changes)


def save_checkpoint(path: str | Path, arrays: dict[str, np.ndarray], meta: RunMeta) -> None:
    """Write arrays and meta to `path`; a process killed mid-write leaves the previous checkpoint intact."""
    buffer = io.BytesIO()
    # The header is a plain unicode array: loading it needs no pickle.
    np.savez(buffer, **arrays, **{_META_KEY: np.array(json.dumps(meta.to_dict()))})
    atomic_write(Path(path), buffer.getvalue())


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], RunMeta]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except Exception as e:  # a truncated or foreign file fails in zipfile, numpy or json
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    return arrays, _meta(meta, path)


def _meta(meta, path: Path) -> RunMeta:
    try:
        return RunMeta.from_dict(meta)
    except (KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{path} is not a readable checkpoint (its header is incomplete)") from None


def load_meta(path: str | Path) -> RunMeta:
    """Only the metadata of a checkpoint (step, history, config...): no array is read."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz[_META_KEY]))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    return _meta(meta, path)


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
