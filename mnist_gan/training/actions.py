"""The Train tab's runs as plain Python: start, pause, resume, stop and resume a run, and read what it shows.

The service's training section, over the one `TrainingWorker` (a run at a time, in a child process). What changes a
run is for admins on a public Space (access.py); every visitor may watch.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan import checks
from mnist_gan.access import ANONYMOUS, Visitor, require_admin
from mnist_gan.config import DEFAULT_RECIPE, TRAINING_SETTINGS, cadence, recipe
from mnist_gan.data import SAMPLE_DATA, SAMPLE_LABEL, mnist_label
from mnist_gan.errors import InvalidInput, shown

from .process import TrainingWorker
from .run_state import RunStatus, RunView

MAX_STEPS = 200_000
DATA_SOURCES = ("mnist", "sample")  # MNIST (the machine's, or downloaded), or the bundled 2,000 images


class Training:
    """Starts and controls the one training run; any visitor reads its status."""

    def __init__(self, worker: TrainingWorker, data: str | None, on_space: bool, evaluate: bool):
        """data: MNIST for runs ($MNIST_GAN_DATA; None: keras.datasets downloads it); evaluate: whether runs draw
        their quality curves (they need the shipped classifier)."""
        self.worker, self.data, self.on_space, self.evaluate = worker, data, on_space, evaluate

    @property
    def version(self) -> int:
        """Grows whenever what status() shows may have changed: pages look at it to stay current."""
        return self.worker.version

    def default_data(self) -> str:
        """The Train tab's data source: MNIST when this machine has it (or can download it), else the sample."""
        keras_cache = Path.home() / ".keras" / "datasets" / "mnist.npz"
        return "mnist" if self.data or self.on_space or keras_cache.is_file() else "sample"

    def start(self, visitor: Visitor = ANONYMOUS, data: str = "mnist", recipe_name: str = DEFAULT_RECIPE,
              **settings) -> RunStatus:
        """Start a run (one at a time) of `recipe_name` with `settings` (TRAINING_SETTINGS fields) changed.
        data: "mnist" or "sample" (the bundled 2,000 images). No seed: a random one, recorded in the run."""
        require_admin(visitor, "Starting a training run")
        if data not in DATA_SOURCES:
            raise InvalidInput(f"data must be 'mnist' or 'sample' (the bundled 2,000 images), got {shown(data)}")
        unknown = set(settings) - {s.name for s in TRAINING_SETTINGS}
        if unknown:
            raise InvalidInput(f"{sorted(unknown)[0]} is not a training setting")
        given = {k: v for k, v in settings.items() if v is not None}
        if "steps" in given:
            given["steps"] = checks.whole(given["steps"], "steps", 1, MAX_STEPS)
        given.setdefault("seed", secrets.randbelow(2**31))
        config = recipe(recipe_name, **given)
        config = config.replace(**cadence(config.steps, self.evaluate))
        if config.steps > MAX_STEPS:
            raise InvalidInput(f"steps must be a whole number from 1 to {MAX_STEPS}, got {config.steps}")
        if data == "sample":
            return self.worker.start(config, SAMPLE_DATA, SAMPLE_LABEL)
        return self.worker.start(config, self.data, mnist_label(self.data))

    def pause(self, visitor: Visitor = ANONYMOUS) -> RunStatus:
        require_admin(visitor, "Pausing training")
        return self.worker.pause()

    def resume(self, visitor: Visitor = ANONYMOUS) -> RunStatus:
        require_admin(visitor, "Resuming training")
        return self.worker.resume()

    def stop(self, visitor: Visitor = ANONYMOUS) -> RunStatus:
        require_admin(visitor, "Stopping training")
        return self.worker.stop()

    def resume_run(self, visitor: Visitor = ANONYMOUS, run: str | None = None) -> RunStatus:
        """Continue an unfinished run (`run`, one of status's resumable_runs; None: the newest)."""
        require_admin(visitor, "Resuming a run")
        return self.worker.resume_run(run)

    def status(self) -> RunStatus:
        return self.worker.status()

    def grid(self, index: int) -> tuple[int, np.ndarray] | None:
        """(step, uint8 grid) of the run's index-th sample grid (negative counts from the end), or None."""
        return self.worker.grid(index)

    def frames(self) -> np.ndarray:
        """The run's sample grids, first to latest (at most 100, evenly spaced), for an animation."""
        grids = self.worker.grids()
        if not grids:
            raise InvalidInput("no sample grids yet: start a run and wait for its first grid")
        return np.stack(grids)

    def close(self) -> None:
        """Stop the run (it saves its weights)."""
        self.worker.close()


def joins_library(library) -> tuple[Callable[[RunView], None], Callable[[list[str]], None]]:
    """The worker's callbacks that keep a model library in step with the runs folder: a run that ends with saved
    weights joins the models; run folders that pruning deleted leave them."""
    def on_done(run: RunView) -> None:
        if run.saved_step is not None:
            library.add(run.name, run.run_dir, f"trained here ({run.saved_step} steps)")

    def on_pruned(names: list[str]) -> None:
        for name in names:
            library.remove(name)

    return on_done, on_pruned
