"""The Train tab's laboratory as plain Python: steps by hand, live edits, forks, the latent atlas, comparing runs.

The service's laboratory section (`Service.lab`): what changes a run is for admins on a public Space (access.py);
what only reads the runs folder (atlas, compare, the list of runs) is open to every visitor, bounded (at most
MAX_COMPARED runs, the images a run already drew).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan.access import Visitor, require_admin
from mnist_gan.config import TRAINING_SETTINGS
from mnist_gan.errors import CheckpointError, InvalidInput, MnistGanError, shown
from mnist_gan.images import make_grid, upscale
from mnist_gan.run_folder import CHECKPOINT_FILE, atlas_paths, checkpointed, sample_paths

from . import atlas, manual_steps
from .checkpoint import load_meta, step_checkpoints
from .process import TrainingWorker, read_png
from .run_state import RunStatus, downsample

MAX_COMPARED = 4
CURVE_POINTS = 150  # history rows per run in a comparison


class Laboratory:
    def __init__(self, worker: TrainingWorker, other_runs: Callable[[], dict[str, Path]] = dict):
        """other_runs: () -> name -> folder of runs that can be compared, not forked (a sweep's trials)."""
        self.worker, self.other_runs = worker, other_runs

    # --- what changes the run (admins) ----------------------------------------------------------------------------

    def take(self, visitor: Visitor, kind: str) -> RunStatus:
        """A step by hand in the paused run: "d", "g", "iteration" or "10" (see manual_steps.py)."""
        require_admin(visitor, "Taking a step by hand")
        return self.worker.take(kind)

    def edit(self, visitor: Visitor, changes: dict) -> RunStatus:
        """Change the active run's live settings (lr_g, lr_d, d_steps, ema_decay) from its next compiled call on."""
        require_admin(visitor, "Changing a run's settings")
        current = self.worker.run.config if self.worker.run else None
        changes = {k: v for k, v in changes.items() if v is not None and getattr(current, k, None) != v}
        if not changes:
            raise InvalidInput("nothing to change: give lr_g, lr_d, d_steps or ema_decay a new value")
        return self.worker.edit(changes)

    def fork(self, visitor: Visitor, run: str, step: int | None, changes: dict) -> RunStatus:
        """A new run from `run`'s checkpoint at `step` (None: its latest) with `changes` (training settings)."""
        require_admin(visitor, "Forking a run")
        known = {s.name for s in TRAINING_SETTINGS} | {"steps"}
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidInput(f"{shown(unknown[0])} is not a training setting")
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step != int(step)):
            raise InvalidInput(f"step must be a whole number, got {shown(step)}")
        return self.worker.fork(run, None if step is None else int(step), changes)

    # --- what only reads (everyone) -------------------------------------------------------------------------------

    def inspection(self) -> tuple[dict, np.ndarray | None]:
        """The newest step by hand of the current run: its numbers, and its images as one picture (or None)."""
        shown_step, path = self.worker.run.evidence("inspection") if self.worker.run else ({}, None)
        if not shown_step:
            raise InvalidInput("no step taken by hand yet: pause the run and take one")
        return shown_step, evidence_picture(manual_steps.load(path)) if path else None

    def runs(self) -> list[dict]:
        """Every run with a checkpoint (the runs folder's, then the sweeps' trials), newest first: name, step, steps,
        fork points (none for a sweep trial), parent."""
        found = []
        for name, run_dir in sorted(self._run_dirs().items(), key=lambda item: item[1].stat().st_mtime, reverse=True):
            try:
                meta = load_meta(run_dir / CHECKPOINT_FILE)
            except MnistGanError:
                continue
            forks = sorted({*step_checkpoints(run_dir), meta.step}) if "/" not in name else []
            found.append({"run": name, "step": meta.step, "steps": meta.config.steps, "origin": meta.origin,
                          "fork_steps": forks})
        return found

    def atlas(self, run: str | None = None, step: int | None = None) -> tuple[int, np.ndarray]:
        """(step, picture) of a run's latent atlas at `step` (the nearest drawn at or before it; None: the latest)
        of `run` (None: the current run)."""
        _check_step(step)
        paths = self._atlas_paths(run)
        if not paths:
            raise InvalidInput("no latent atlas yet: a run draws one at each sample step")
        chosen = paths[-1] if step is None else next((p for p in reversed(paths) if p[0] <= step), paths[0])
        return chosen[0], atlas.render(atlas.load(chosen[1]))

    def atlas_frames(self, run: str | None = None, limit: int = 60) -> np.ndarray:
        """A run's atlases, first to latest (at most `limit`, evenly spaced), for an animation."""
        paths = downsample(self._atlas_paths(run), limit)
        if not paths:
            raise InvalidInput("no latent atlas yet: a run draws one at each sample step")
        return np.stack([atlas.render(atlas.load(path), scale=2) for _, path in paths])

    def compare(self, runs: list[str], step: int | None = None) -> tuple[list[dict], np.ndarray]:
        """2 to 4 runs side by side: each one's curves (D accuracies, losses, cFID, on one step axis) and its
        fixed-noise grid at `step` (the nearest drawn at or before it; None: each one's latest)."""
        if not isinstance(runs, (list, tuple)) or not 2 <= len(runs) <= MAX_COMPARED or len(set(map(str, runs))) != len(runs):
            raise InvalidInput(f"compare 2 to {MAX_COMPARED} different runs, got {shown(runs)}")
        _check_step(step)
        rows, grids = [], []
        for name in runs:
            run_dir = self._run_dir(name)
            try:
                meta = load_meta(run_dir / CHECKPOINT_FILE)
            except CheckpointError:
                raise InvalidInput(f"{shown(name)} has no checkpoint to compare yet") from None
            samples = sample_paths(run_dir)
            shown_at = [s for s in samples if step is None or s[0] <= step] or samples[:1]
            grid = read_png(shown_at[-1][1]) if shown_at else None
            grids.append(grid)
            rows.append({"run": name, "step": meta.step, "grid_step": shown_at[-1][0] if shown_at else None,
                         "history": downsample(meta.history, CURVE_POINTS),
                         "quality": [{k: q[k] for k in ("step", "cfid") if k in q} for q in meta.quality],
                         "origin": meta.origin, "edits": meta.edits})
        return rows, side_by_side(grids)

    def _run_dirs(self) -> dict[str, Path]:
        """Run name -> folder: the runs folder's runs by their folder name, then the other runs (sweep trials)."""
        return {p.name: p for p in checkpointed(self.worker.runs_dir)} | self.other_runs()

    def _run_dir(self, name) -> Path:
        folders = self._run_dirs()
        if not isinstance(name, str) or name not in folders:
            raise InvalidInput(f"no run called {shown(name)}")
        return folders[name]

    def _atlas_paths(self, run: str | None) -> list[tuple[int, str]]:
        if run in (None, ""):
            return self.worker.run.atlas_paths() if self.worker.run else []
        return atlas_paths(self._run_dir(run))



def evidence_picture(arrays: dict[str, np.ndarray], scale: int = 3) -> np.ndarray:
    """A step by hand's images as one uint8 picture: a row each (real, generated; G's before, after, and the
    difference, brighter where G's step changed more)."""
    rows = [arrays[k] for k in ("real", "fake", "g_before", "g_after", "before", "after") if k in arrays]
    for before, after in (("g_before", "g_after"), ("before", "after")):
        if before in arrays:
            change = np.abs(arrays[after].astype(np.int16) - arrays[before].astype(np.int16))
            rows.append(np.clip(change * 2, 0, 255).astype(np.uint8))
    cols = max(len(r) for r in rows)
    return make_grid(np.concatenate(rows), rows=len(rows), cols=cols, scale=scale)


def side_by_side(grids: list[np.ndarray | None]) -> np.ndarray:
    """Grids next to each other, a black gap between (a missing one: an empty square)."""
    height = max((g.shape[0] for g in grids if g is not None), default=64)
    padded = []
    for grid in grids:
        grid = np.zeros((height, height), np.uint8) if grid is None else grid
        canvas = np.zeros((height, grid.shape[1]), np.uint8)
        canvas[: grid.shape[0]] = grid
        padded += [canvas, np.zeros((height, 12), np.uint8)]
    return upscale(np.concatenate(padded[:-1], axis=1), 2)


def _check_step(step) -> None:
    """A step to show: None (the latest) or a number (NaN is none: no step is at or before it)."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step != step):
        raise InvalidInput(f"step must be a number, got {shown(step)}")
