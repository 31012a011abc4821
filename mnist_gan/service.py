"""Every action of the app as plain Python: validate, call the package, return arrays and dataclasses.

The web app (app.py) is layout and wiring over a `Service`; tests call the service directly. A service is built
explicitly (`Service.from_env()`): building it reads folders but starts nothing. `start()` does what has side
effects (the start-up model from the Hub); `close()` stops the training run. Every method raises only package
errors (`MnistGanError`) for what a caller can fix.

On a public Space the service is what stands between visitors and the machine: what changes state or spends the
owner's credentials (train_*, push, pull) is for admins only (access.py), a visitor's Hub call never spends the
Space's own token, and everything a visitor can make grow is bounded (models, runs, slow computations).
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan.hub import push_pull
from mnist_gan.inside.actions import Digit, Figures, Inside, check_latent
from mnist_gan.inside.directions import MAX_DIRECTIONS, Direction, find_directions, move, raw_directions
from mnist_gan.model.architectures import NUM_CLASSES
from mnist_gan.model.generator import Generator
from mnist_gan.serving import access
from mnist_gan.serving.library import MAX_ADDED, Library
from mnist_gan.sweeps.spec import add_sweep_models, sweep_folders
from mnist_gan.training.laboratory import Laboratory
from mnist_gan.training.process import MAX_RUNS, MAX_RUNS_BYTES, TrainingWorker
from mnist_gan.training.run_state import RunStatus, RunView

from .config import DEFAULT_RECIPE, TRAINING_SETTINGS, cadence, recipe
from .data import DATA_ENV, SAMPLE_DATA, SAMPLE_LABEL
from .errors import InvalidInput, MnistGanError, log, shown
from .images import check_seed, grid_shape, interpolation, latents, make_grid, to_uint8, upscale

ROOT = Path(__file__).resolve().parent.parent
MAX_IMAGES, MAX_FRAMES, MAX_STEPS = 100, 32, 200_000
MAX_TEMPERATURE = 2.0
MAX_SCALE = 8  # a permalink's enlargement: 8x a 100-digit grid is ~2,400 px square
SLIDER_RANGE = 4.0  # latent units: a direction's coordinate is N(0, 1), so +-4 reaches far past typical digits
ALL_DIGITS = "all digits"
DIGITS = [str(k) for k in range(NUM_CLASSES)]
MODES = ("directions", "raw")  # the latent explorer's sliders: found directions, or z's own axes
DATA_SOURCES = {"mnist": "MNIST", "sample": f"the {SAMPLE_LABEL}"}
DIRECTION_CACHE = 32  # models whose directions are kept (about a second of CPU each to find)
SLOW_AT_ONCE = 1  # slow computations (a model's directions: ~4.5 CPU-s) at a time; callers beyond it queue


@dataclass(frozen=True)
class Settings:
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

    @classmethod
    def from_env(cls, environ=os.environ) -> Settings:
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
                   sweeps=sweep_folders(environ))


@dataclass(frozen=True)
class GridRequest:
    """A Generate grid, checked: what generate draws, and what a permalink's ETag is made of."""

    generator: Generator
    seed: int
    n: int
    labels: np.ndarray | None  # one digit per image (conditional models), else None
    rows: int
    cols: int
    temperature: float
    scale: int


@dataclass(frozen=True)
class Visitor:
    """Who asks: their Hugging Face login on a Space (None when signed out or off Spaces) and its token."""

    username: str | None = None
    oauth_token: str | None = None


ANONYMOUS = Visitor()


class Service:
    """The app's actions over one model library and one training worker."""

    def __init__(self, settings: Settings, library: Library | None = None):
        from mnist_gan.quality.metrics import CLASSIFIER_DIR, CLASSIFIER_WEIGHTS

        self.settings = settings
        self.library = library or Library(max_added=settings.max_models)
        add_sweep_models(self.library, settings.sweeps)  # each finished sweep trial's best weights
        self.worker = TrainingWorker(settings.runs_dir, on_done=self._register_run, on_pruned=self._forget_runs,
                                     max_runs=settings.max_runs, max_bytes=settings.max_runs_bytes)
        self.lab = Laboratory(self.worker, settings.sweeps)  # steps by hand, live edits, forks, atlas, comparisons
        self.evaluate = (CLASSIFIER_DIR / CLASSIFIER_WEIGHTS).is_file()  # quality curves need the judge
        self.notice = ""  # what start() has to say about the start-up model
        self._directions = OncePerKey(self._find_directions, DIRECTION_CACHE)
        self._slow = threading.BoundedSemaphore(SLOW_AT_ONCE)
        self._classifier = None
        self._classifier_lock = threading.Lock()

    @classmethod
    def from_env(cls, environ=os.environ) -> Service:
        return cls(Settings.from_env(environ))

    def start(self) -> None:
        """What has side effects: the start-up model from the Hub (MNIST_GAN_REPO)."""
        self.notice = self._startup_model()

    def close(self) -> None:
        """Stop the training run (it saves its weights)."""
        self.worker.close()

    # --- models ---------------------------------------------------------------------------------------------------

    def models(self) -> list[dict]:
        """Every model the app can use (shipped, trained here, pulled), the default first."""
        names = self.library.names()
        return [self.library.info(name) for name in sorted(names, key=lambda name: name != self.library.default)]

    def model_info(self, model: str) -> dict:
        return self.library.info(model)

    # --- Generate -------------------------------------------------------------------------------------------------

    def generate(self, model: str, seed, n, digit=ALL_DIGITS, temperature=1.0, scale=None) -> np.ndarray:
        """A uint8 grid of n digits (1-100) drawn by `model` from `seed`, enlarged for display (or `scale` times,
        1-8); same arguments, same pixels. Conditional models draw `digit`, or a row per digit."""
        return self.draw(self.grid_request(model, seed, n, digit, temperature, scale))

    def draw(self, grid: GridRequest) -> np.ndarray:
        """The uint8 grid a checked request makes (what generate returns for the same arguments)."""
        labels = grid.labels
        images = grid.generator.generate(grid.seed, len(labels) if labels is not None else grid.n, labels,
                                         grid.temperature)
        return make_grid(images, grid.rows, grid.cols, scale=grid.scale)

    def grid_request(self, model: str, seed, n, digit=ALL_DIGITS, temperature=1.0, scale=None) -> GridRequest:
        """generate's arguments, checked, and the grid they make (no drawing yet)."""
        generator = self.library.get(model)
        seed, n = check_seed(seed), count(n, "grid size", 1, MAX_IMAGES)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not 0.1 <= temperature <= MAX_TEMPERATURE:
            raise InvalidInput(f"temperature must be a number from 0.1 to {MAX_TEMPERATURE:g}, got {shown(temperature)}")
        labels, rows, cols = grid_labels(generator, digit, n)
        scale = display_scale(cols) if scale is None else count(scale, "scale", 1, MAX_SCALE)
        return GridRequest(generator, seed, n, labels, rows, cols, float(temperature), scale)

    # --- Latent explorer ------------------------------------------------------------------------------------------

    def latent_directions(self, model: str, mode: str = "directions") -> list[dict]:
        """The explorer's sliders for `model`: what each moves, and how linear it is (R^2)."""
        return [{"index": i, "label": d.label, "r2": None if math.isnan(d.r2) else round(d.r2, 3)}
                for i, d in enumerate(self.basis(model, mode))]

    def basis(self, model: str, mode: str) -> list[Direction]:
        """The directions the sliders move along: found from the model (computed once), or z's own axes."""
        generator = self.library.get(model)
        if mode not in MODES:
            raise InvalidInput(f"mode must be 'directions' or 'raw', got {shown(mode)}")
        return self._directions(model, generator) if mode == "directions" else \
            raw_directions(generator.config.latent_dim)

    def latent(self, model: str, seed, digit, mode: str, amounts, z=None) -> np.ndarray:
        """One digit, 280x280: `seed`'s latent (or `z`, a latent found elsewhere) moved amounts[i] units along
        slider i (see latent_directions). digit: the digit a class-conditional model draws (unconditional models
        ignore it)."""
        generator = self.library.get(model)
        z = self.explorer_latent(model, seed, mode, amounts, z)
        image = to_uint8(generator.images(z[None], one_digit(generator, digit, 1)))
        return make_grid(image, 1, 1, pad=0, scale=10)

    def explorer_latent(self, model: str, seed, mode: str, amounts, z=None) -> np.ndarray:
        """The explorer's latent: `seed`'s (or `z`) moved amounts[i] units along slider i."""
        generator = self.library.get(model)
        basis = self.basis(model, mode)
        if not isinstance(amounts, (list, tuple)) or len(amounts) > MAX_DIRECTIONS \
                or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in amounts):
            raise InvalidInput(f"amounts must be a list of at most {MAX_DIRECTIONS} numbers, got {shown(amounts)}")
        if not all(math.isfinite(a) for a in amounts):
            raise InvalidInput("slider values must be finite numbers (no NaN or infinity)")
        if any(abs(a) > 10 * SLIDER_RANGE for a in amounts):
            raise InvalidInput(f"slider values must lie within +-{10 * SLIDER_RANGE:g}")
        start = latents(check_seed(seed), 1, generator.config.latent_dim)[0] if z is None else \
            check_latent(z, generator.config.latent_dim)
        return move(start, basis, amounts)

    def interpolate(self, model: str, seed_a, seed_b, frames, digit) -> tuple[np.ndarray, np.ndarray]:
        """(a frame strip, the frames) of the spherical path from seed_a's latent to seed_b's."""
        generator = self.library.get(model)
        frames = count(frames, "frames", 2, MAX_FRAMES)
        z = interpolation(check_seed(seed_a), check_seed(seed_b), frames, generator.config.latent_dim)
        images = to_uint8(generator.images(z, one_digit(generator, digit, frames)))
        return make_grid(images, 1, frames, scale=2), images

    def _find_directions(self, model: str, generator: Generator) -> list[Direction]:
        with self._slow:  # many models' first calls at once must not starve every other request of CPU
            return find_directions(generator, seed=0, digit_scorer=self._digit_scorer())

    def _digit_scorer(self) -> Callable[[np.ndarray], np.ndarray]:
        with self._classifier_lock:
            if self._classifier is None:
                from mnist_gan.quality.metrics import Classifier

                self._classifier = Classifier.load()
            return self._classifier.digit_scores

    # --- Inside ---------------------------------------------------------------------------------------------------
    # What D sees, finding a digit in latent space, spot the fake (mnist_gan/inside.py holds the logic).

    @property
    def inside(self) -> Inside:
        """The Inside tab's actions, built on first use (the spot-the-fake tally lives beside the runs)."""
        with self._classifier_lock:
            if getattr(self, "_inside", None) is None:
                from mnist_gan.inside.spot import tally_path

                self._inside = Inside(self.library, self._classifier_model, self.settings.data,
                                      tally_path(self.settings.runs_dir))
            return self._inside

    def _classifier_model(self):
        self._digit_scorer()  # loads the shipped classifier once, shared with the explorer
        return self._classifier

    def inside_digit(self, model: str, source: str, seed=0, index=0, digit=None, picture=None, z=None) -> Digit:
        """The image the Inside tab looks at: "generated" (seed, or z), "test" (index 0-999) or "picture"."""
        return self.inside.digit(model, source, seed, index, digit, picture, z)

    def discriminate(self, model: str, image, digit=None) -> Figures:
        """D's raw score of a picture (or Digit), its verdict, the score histograms and the saliency heatmap."""
        return self.inside.discriminate(model, image, digit)

    def d_pull(self, model: str, image, digit=None, steps=12) -> Figures:
        """Gradient ascent on the pixels towards what D calls real: frames and scores."""
        return self.inside.d_pull(model, image, digit, steps)

    def z_pull(self, model: str, seed=0, digit=None, steps=12, z=None) -> Figures:
        """A generated digit's z following D (G's training signal): frames and scores."""
        return self.inside.z_pull(model, seed, digit, steps, z)

    def invert(self, model: str, image, digit=None, restarts=4) -> Figures:
        """The z (and digit or code) whose image best matches a picture (or Digit), with what goes with it."""
        return self.inside.invert(model, image, digit, restarts)

    def style_grid(self, model: str, seed=0, z=None) -> np.ndarray:
        """One z drawn as each digit 0-9 (class-conditional models)."""
        return self.inside.style_grid(model, seed, z)

    def morph(self, model: str, digit_a, digit_b, seed=0, frames=10, z=None) -> tuple[np.ndarray, np.ndarray]:
        """One z while its one-hot label slides from digit_a to digit_b: (strip, frames)."""
        return self.inside.morph(model, digit_a, digit_b, seed, frames, z)

    def spot_round(self, model: str) -> tuple[str, np.ndarray]:
        """A spot-the-fake round: its id and 16 digits (which are fake stays here)."""
        return self.inside.spot_round(model)

    def spot_answer(self, round_id, marked) -> dict:
        """The round's truth, the visitor's score, and the model's fooled-rate (recorded)."""
        return self.inside.spot_answer(round_id, marked)

    def spot_record(self, model: str) -> dict:
        """A model's human fooled-rate (95% Wilson interval, judgements) beside its cFID."""
        return self.inside.spot_record(model)

    # --- Train ----------------------------------------------------------------------------------------------------

    def default_data(self) -> str:
        """The Train tab's data source: MNIST when this machine has it (or can download it), else the sample."""
        keras_cache = Path.home() / ".keras" / "datasets" / "mnist.npz"
        return "mnist" if self.settings.data or self.settings.on_space or keras_cache.is_file() else "sample"

    def train_start(self, visitor: Visitor = ANONYMOUS, data: str = "mnist", recipe_name: str = DEFAULT_RECIPE,
                    **settings) -> RunStatus:
        """Start a run (one at a time) of `recipe_name` with `settings` (TRAINING_SETTINGS fields) changed.
        data: "mnist" or "sample" (the bundled 2,000 images). No seed: a random one, recorded in the run."""
        access.require_admin(visitor.username, "Starting a training run")
        if data not in DATA_SOURCES:
            raise InvalidInput(f"data must be 'mnist' or 'sample' (the bundled 2,000 images), got {shown(data)}")
        unknown = set(settings) - {s.name for s in TRAINING_SETTINGS}
        if unknown:
            raise InvalidInput(f"{sorted(unknown)[0]} is not a training setting")
        given = {k: v for k, v in settings.items() if v is not None}
        if "steps" in given:
            given["steps"] = count(given["steps"], "steps", 1, MAX_STEPS)
        given.setdefault("seed", secrets.randbelow(2**31))
        config = recipe(recipe_name, **given)
        config = config.replace(**cadence(config.steps, self.evaluate))
        if config.steps > MAX_STEPS:
            raise InvalidInput(f"steps must be a whole number from 1 to {MAX_STEPS}, got {config.steps}")
        if data == "sample":
            return self.worker.start(config, SAMPLE_DATA, SAMPLE_LABEL)
        return self.worker.start(config, self.settings.data, mnist_label(self.settings.data))

    def train_pause(self, visitor: Visitor = ANONYMOUS) -> RunStatus:
        access.require_admin(visitor.username, "Pausing training")
        return self.worker.pause()

    def train_resume(self, visitor: Visitor = ANONYMOUS) -> RunStatus:
        access.require_admin(visitor.username, "Resuming training")
        return self.worker.resume()

    def train_stop(self, visitor: Visitor = ANONYMOUS) -> RunStatus:
        access.require_admin(visitor.username, "Stopping training")
        return self.worker.stop()

    def train_resume_run(self, visitor: Visitor = ANONYMOUS, run: str | None = None) -> RunStatus:
        """Continue an unfinished run (`run`, one of train_status's resumable_runs; None: the newest)."""
        access.require_admin(visitor.username, "Resuming a run")
        return self.worker.resume_run(run)

    def train_status(self) -> RunStatus:
        return self.worker.status()

    def train_grid(self, index: int) -> tuple[int, np.ndarray] | None:
        """(step, uint8 grid) of the run's index-th sample grid (negative counts from the end), or None."""
        return self.worker.grid(index)

    def train_frames(self) -> np.ndarray:
        """The run's sample grids, first to latest (at most 100, evenly spaced), for an animation."""
        grids = self.worker.grids()
        if not grids:
            raise InvalidInput("no sample grids yet: start a run and wait for its first grid")
        return np.stack(grids)

    def _register_run(self, run: RunView) -> None:
        """Called once when a run's process ends: a run that saved weights joins the models."""
        if run.saved_step is not None:
            self.library.add(run.name, run.run_dir, f"trained here ({run.saved_step} steps)")

    def _forget_runs(self, names: list[str]) -> None:
        """Run folders that pruning deleted leave the models."""
        for name in names:
            self.library.remove(name)

    # --- Hub ------------------------------------------------------------------------------------------------------

    def push(self, visitor: Visitor, model: str, repo_id: str, token: str = "", private: bool = False,
             tag: str = "") -> dict:
        """Push a model's weights folder to a Hub repo (created if needed); returns the commit sha and its URL."""
        access.require_admin(visitor.username, "Pushing to the Hub")
        folder = self.library.folder(model)
        return _hub_result(push_pull.push(folder, repo_id, self._token(visitor, token), private=bool(private),
                                    tag=tag or None), model)

    def pull(self, visitor: Visitor, repo_id: str, revision: str = "main", token: str = "") -> dict:
        """Pull a pushed model (checked against its recorded sha256) and add it to the models as repo@sha."""
        access.require_admin(visitor.username, "Pulling from the Hub")
        result = push_pull.pull(repo_id, revision or "main", token=self._token(visitor, token),
                          cache_dir=self.settings.hub_cache)
        return _hub_result(result, self._add_pulled(result))

    def _token(self, visitor: Visitor, field: str) -> str | None:
        """The token a caller's Hub action uses: the field, else their own login, else (off a Space only, where
        the caller is the machine's owner) $HF_TOKEN."""
        return push_pull.resolve_token(field, visitor.oauth_token, environment=not self.settings.on_space)

    def _add_pulled(self, result: push_pull.HubResult) -> str:
        """A pulled model joins the models; the ones it pushes out leave the Hub cache too."""
        name = f"{result.repo_id}@{result.commit_sha[:7]}"
        for _, folder in self.library.add(name, result.folder, f"from the Hub ({result.url})"):
            if folder.parent.name == "snapshots":  # a huggingface_hub cache snapshot: its files and their blobs
                _drop_snapshot(folder)
        return name

    def _startup_model(self) -> str:
        """MNIST_GAN_REPO (+ MNIST_GAN_REVISION): pull that model and make it the default; returns a notice."""
        repo, revision = self.settings.startup_repo, self.settings.startup_revision
        if not repo:
            return ""
        shipped = self.library.default
        try:  # the owner's own setting: its token is $HF_TOKEN
            result = push_pull.pull(repo, revision, token=push_pull.resolve_token(), cache_dir=self.settings.hub_cache)
            self.library.default = self._add_pulled(result)
        except Exception as e:  # whatever went wrong, the app starts, on the shipped model
            self.library.default = shipped
            reason = str(e) if isinstance(e, MnistGanError) else f"{type(e).__name__}; see the log"
            if not isinstance(e, MnistGanError):
                log.error("the start-up model %s@%s failed to load", repo, revision, exc_info=e)
            return f"Could not load {repo}@{revision} from the Hub ({reason}). Showing the shipped model {shipped!r}."
        return f"Loaded {self.library.default} from the Hub ({result.url})."


class OncePerKey:
    """compute(key, *args) at most once per key, however many callers ask at the same time; the newest `size`
    results are kept. For work that is slow and the same for everyone (a model's latent directions)."""

    def __init__(self, compute: Callable, size: int):
        self.compute, self.size = compute, size
        self._results: OrderedDict = OrderedDict()
        self._locks: dict = {}
        self._lock = threading.Lock()

    def __call__(self, key, *args):
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # the first caller computes; the others wait for its result
            with self._lock:
                if key in self._results:
                    return self._results[key]
            result = self.compute(key, *args)
            with self._lock:
                self._results[key] = result
                while len(self._results) > self.size:
                    self._results.popitem(last=False)
                self._locks.pop(key, None)
            return result


# --- validation and grid policy (pure) --------------------------------------------------------------------------

def count(value, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] from a form or an API call, or an InvalidInput naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    return int(value)


def grid_labels(generator: Generator, digit, n: int) -> tuple[np.ndarray | None, int, int]:
    """(labels, rows, cols) of a grid of n: conditional models draw one digit, or a row per digit."""
    digit = ALL_DIGITS if digit in (None, "") else as_digit(digit)
    if digit != ALL_DIGITS and digit not in DIGITS:
        raise InvalidInput(f"digit must be one of 0-9 or {ALL_DIGITS!r}, got {shown(digit)}")
    if not generator.config.conditional:
        if digit != ALL_DIGITS:
            raise InvalidInput(f"{generator.name} is unconditional: it cannot be asked for a digit (use "
                               f"{ALL_DIGITS!r})")
        return None, *grid_shape(n)
    if digit == ALL_DIGITS:
        cols = math.ceil(n / NUM_CLASSES)
        return np.repeat(np.arange(NUM_CLASSES), cols), NUM_CLASSES, cols
    return np.full(n, int(digit)), *grid_shape(n)


def one_digit(generator: Generator, digit, n: int) -> np.ndarray | None:
    """Labels for n latents of one digit; unconditional models ignore the digit (the page hides its picker)."""
    if not generator.config.conditional:
        return None
    if as_digit(digit) not in DIGITS:
        raise InvalidInput(f"{generator.name} is class-conditional: choose a digit 0-9, got {shown(digit)}")
    return np.full(n, int(digit))


def as_digit(value):
    """A digit as the pickers spell it ("3"); an API caller may send the number 3."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def mnist_label(path: str | None) -> str:
    """What a run trains on, in words (never a server path: visitors see it)."""
    if path:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return f"MNIST, {len(npz['y_train']):,} images"
        except Exception:  # the training process says what is wrong with the file; here it is only a label
            return "MNIST"
    return "MNIST, 60,000 images"


def display_scale(cols: int) -> int:
    """Upscaling so a grid is about 600 px wide: big enough to see strokes, small enough to download."""
    return max(2, min(8, 600 // (cols * 30)))


def enlarged(grid: np.ndarray) -> np.ndarray:
    """A training run's sample grid as the Train tab shows it: twice the size, the strokes are what matters."""
    return upscale(grid, 2)


def _drop_snapshot(snapshot: Path) -> None:
    """Delete one commit's snapshot from a huggingface_hub cache: its links, and the blobs no other snapshot uses."""
    repo = snapshot.parent.parent
    blobs = {link.resolve() for link in snapshot.rglob("*") if link.is_symlink()}
    shutil.rmtree(snapshot, ignore_errors=True)
    still_used = {link.resolve() for link in (repo / "snapshots").rglob("*") if link.is_symlink()}
    for blob in blobs - still_used:
        blob.unlink(missing_ok=True)


def _hub_result(result: push_pull.HubResult, model: str) -> dict:
    return {"model": model, "repo_id": result.repo_id, "commit_sha": result.commit_sha, "url": result.url,
            "tag": result.tag}
