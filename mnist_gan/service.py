"""The app's one service: every action of the page and the API as plain Python, in named sections.

`Service.from_env()` builds it from the environment; building reads folders but starts nothing, and `start()` does
what has side effects (the start-up model from the Hub). Each tab of the page talks to one section, the same way:

    service.library    the models (names, the default, what each one is)
    service.drawing    Generate and the Latent explorer (serving/drawing.py)
    service.inside     Inside the GAN (inside/actions.py)
    service.training   the Train tab's run (training/actions.py)
    service.lab        the Train tab's laboratory (training/laboratory.py)
    service.hub        the Hub tab (hub/actions.py)

A section validates what it is sent and raises only package errors (`MnistGanError`) for what a caller can fix.
Whatever changes state or spends the owner's credentials takes the caller (`Visitor`) first: on a public Space it is
for admins only (access.py). Everything a visitor can make grow is bounded (models, runs, slow computations).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnist_gan import access
from mnist_gan.data import DATA_ENV
from mnist_gan.errors import log
from mnist_gan.hub.actions import Hub
from mnist_gan.inside.actions import Inside
from mnist_gan.inside.spot import tally_path
from mnist_gan.once import Lazy
from mnist_gan.serving.drawing import Drawing
from mnist_gan.serving.library import MAX_ADDED, Library
from mnist_gan.sweeps.spec import add_sweep_models, sweep_folders, sweep_runs
from mnist_gan.training.actions import Training, joins_library
from mnist_gan.training.laboratory import Laboratory
from mnist_gan.training.process import MAX_RUNS, MAX_RUNS_BYTES, TrainingWorker

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AppSettings:
    """Where the app keeps things and what it starts with, from the environment."""

    runs_dir: Path
    hub_cache: str | None = None  # None: huggingface_hub's own cache
    data: str | None = None  # MNIST for the Train tab ($MNIST_GAN_DATA); None: keras.datasets downloads it
    startup_repo: str | None = None  # pulled and made the default at start-up
    startup_revision: str = "main"
    on_space: bool = False  # a Hugging Face Space: closed by default, and never the owner's token for visitors
    max_models: int = MAX_ADDED  # trained and pulled models kept ($MNIST_GAN_MAX_MODELS)
    max_runs: int = MAX_RUNS  # run folders kept ($MNIST_GAN_MAX_RUNS)
    max_runs_bytes: int = MAX_RUNS_BYTES  # and their disk budget ($MNIST_GAN_RUNS_MB)
    sweeps: tuple[str, ...] = ()  # sweep folders whose trials' best weights join the models ($MNIST_GAN_SWEEPS)
    onnx_cache: Path | None = None  # the app's own ONNX exports ($MNIST_GAN_ONNX_CACHE; None: beside runs_dir)

    @classmethod
    def from_env(cls, environ=os.environ) -> AppSettings:
        def number(name: str, default: float) -> float:
            try:
                return float(environ.get(name) or default)
            except ValueError:
                log.warning("%s=%r is not a number: using %s", name, environ.get(name), default)
                return default

        return cls(runs_dir=Path(environ.get("MNIST_GAN_RUNS") or ROOT / "runs"),
                   hub_cache=environ.get("MNIST_GAN_HUB_CACHE") or None, data=environ.get(DATA_ENV) or None,
                   startup_repo=environ.get("MNIST_GAN_REPO") or None,
                   startup_revision=environ.get("MNIST_GAN_REVISION") or "main",
                   on_space=access.on_space(environ), max_models=int(number("MNIST_GAN_MAX_MODELS", MAX_ADDED)),
                   max_runs=int(number("MNIST_GAN_MAX_RUNS", MAX_RUNS)),
                   max_runs_bytes=int(number("MNIST_GAN_RUNS_MB", MAX_RUNS_BYTES / 2**20) * 2**20),
                   sweeps=sweep_folders(environ),
                   onnx_cache=Path(environ["MNIST_GAN_ONNX_CACHE"]) if environ.get("MNIST_GAN_ONNX_CACHE") else None)

    @property
    def exports(self) -> Path:
        """Where the app writes the ONNX files it exports (a sibling of runs_dir: pruning runs never reaches it)."""
        return self.onnx_cache or self.runs_dir.with_name(self.runs_dir.name + "-onnx")


class Service:
    """The app's sections over one model library and one training worker."""

    def __init__(self, settings: AppSettings, library: Library | None = None):
        from mnist_gan.quality.metrics import CLASSIFIER_DIR, CLASSIFIER_WEIGHTS, Classifier

        self.settings = settings
        self.library = library or Library(max_added=settings.max_models)
        add_sweep_models(self.library, settings.sweeps)  # each finished sweep trial's best weights
        classifier = Lazy(Classifier.load)  # the shipped judge, loaded once by whichever section needs it first
        on_done, on_pruned = joins_library(self.library)
        worker = TrainingWorker(settings.runs_dir, on_done=on_done, on_pruned=on_pruned, max_runs=settings.max_runs,
                                max_bytes=settings.max_runs_bytes)
        self.drawing = Drawing(self.library, classifier, settings.exports)
        self.inside = Inside(self.library, classifier, settings.data, tally_path(settings.runs_dir))
        self.training = Training(worker, settings.data, settings.on_space,
                                 evaluate=(CLASSIFIER_DIR / CLASSIFIER_WEIGHTS).is_file())  # the curves need it
        self.lab = Laboratory(worker, lambda: sweep_runs(settings.sweeps))
        self.hub = Hub(self.library, settings.hub_cache, settings.on_space)
        self.notice = ""  # what start() has to say about the start-up model

    @classmethod
    def from_env(cls, environ=os.environ) -> Service:
        return cls(AppSettings.from_env(environ))

    def start(self) -> None:
        """What has side effects: the start-up model from the Hub (MNIST_GAN_REPO)."""
        self.notice = self.hub.startup_model(self.settings.startup_repo, self.settings.startup_revision)

    def close(self) -> None:
        """Stop the training run (it saves its weights)."""
        self.training.close()
