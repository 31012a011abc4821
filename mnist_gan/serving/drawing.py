"""What the Generate tab and the Latent explorer draw: grids from a seed, one latent moved along sliders, and the
spherical path between two seeds. The service's drawing section; every value a visitor sends is checked here.

The page draws these in the visitor's browser when it can (the model's ONNX file under onnxruntime-web): then the
server only hands out what the browser cannot compute the same way itself: a seed's latents (numpy's generator),
the slerp between two seeds (numpy's trigonometry), a model's slider directions, and the model's file. The browser
converts and lays out the pixels exactly as `images.to_uint8` and `images.make_grid` do.

A model's latent directions take ~4.5 CPU-seconds to find: they are found once per model (concurrent first callers
wait for the one computation) and never more than SLOW_AT_ONCE at a time (with the app's own ONNX exports), so many
models' first calls cannot starve every other request of CPU.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan import checks
from mnist_gan.atomic_files import current_sha256
from mnist_gan.errors import InvalidInput, shown
from mnist_gan.images import check_seed, grid_shape, interpolation, latents, make_grid, to_uint8
from mnist_gan.inside.directions import (
    DIRECTIONS_FILE,
    MAX_DIRECTIONS,
    Direction,
    find_directions,
    load_directions,
    move,
    raw_directions,
    save_directions,
)
from mnist_gan.model.architectures import NUM_CLASSES
from mnist_gan.model.generator import WEIGHTS_FILE, Generator
from mnist_gan.once import OncePerKey

from .browser_models import MAKING, BrowserModels
from .library import Library

MAX_IMAGES, MAX_FRAMES = 100, 32
MAX_TEMPERATURE = 2.0
MAX_SCALE = 8  # a permalink's enlargement: 8x a 100-digit grid is ~2,400 px square
DIGIT_SCALE, STRIP_SCALE = 10, 2  # the explorer's digit (280x280) and the interpolation strip
SLIDER_RANGE = 4.0  # latent units: a direction's coordinate is N(0, 1), so +-4 reaches far past typical digits
ALL_DIGITS = "all digits"
DIGITS = [str(k) for k in range(NUM_CLASSES)]
MODES = ("directions", "raw")  # the latent explorer's sliders: found directions, or z's own axes
DIRECTION_CACHE = 32  # models whose directions are kept (about a second of CPU each to find)
SLOW_AT_ONCE = 1  # slow computations (a model's directions) at a time; callers beyond it queue


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

    def key(self) -> str | None:
        """What names the grid's pixels without drawing them: the same key, the same pixels (None for a generator
        without a weights file, whose weights may change under it)."""
        weights = weights_version(self.generator)
        return weights and _key([weights, self.seed, self.n, None if self.labels is None else self.labels.tolist(),
                                 self.rows, self.cols, self.temperature, self.scale])


@dataclass(frozen=True)
class Digits:
    """Checked latents that each draw one digit (the explorer's digit, an interpolation's frames)."""

    generator: Generator
    z: np.ndarray  # float32 (count, latent_dim)
    labels: np.ndarray | None  # one digit per latent (conditional models), else None

    def key(self) -> str | None:
        """What names the digits' pixels without drawing them (as GridRequest.key)."""
        weights = weights_version(self.generator)
        return weights and _key([weights, self.z.astype(np.float32).tobytes().hex(),
                                 None if self.labels is None else self.labels.tolist()])


class Drawing:
    """Grids, the explorer's digit and interpolations from the models of a library."""

    def __init__(self, library: Library, classifier: Callable, exports: Path | None = None):
        """classifier: () -> the shipped Classifier (its digit scores find the "more like a 5" directions);
        exports: the folder for the ONNX files the app exports itself (None: only shipped models draw in browsers)."""
        self.library, self.classifier = library, classifier
        self._directions = OncePerKey(DIRECTION_CACHE)
        self._slow = threading.BoundedSemaphore(SLOW_AT_ONCE)
        self.browser = BrowserModels(library, exports, self._slow)

    # --- Generate ---------------------------------------------------------------------------------------------

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
        seed, n = check_seed(seed), checks.whole(n, "grid size", 1, MAX_IMAGES)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not 0.1 <= temperature <= MAX_TEMPERATURE:
            raise InvalidInput(f"temperature must be a number from 0.1 to {MAX_TEMPERATURE:g}, got {shown(temperature)}")
        labels, rows, cols = grid_labels(generator, digit, n)
        scale = display_scale(cols) if scale is None else checks.whole(scale, "scale", 1, MAX_SCALE)
        return GridRequest(generator, seed, n, labels, rows, cols, float(temperature), scale)

    def grid_latents(self, grid: GridRequest) -> np.ndarray:
        """The float32 latents a checked grid draws (one per label for conditional models' rows of digits)."""
        count = len(grid.labels) if grid.labels is not None else grid.n
        return latents(grid.seed, count, grid.generator.config.latent_dim, grid.temperature)

    # --- Latent explorer --------------------------------------------------------------------------------------

    def latent_directions(self, model: str, mode: str = "directions") -> list[dict]:
        """The explorer's sliders for `model`: what each moves, and how linear it is (R^2)."""
        return [{"index": i, "label": d.label, "r2": None if math.isnan(d.r2) else round(d.r2, 3)}
                for i, d in enumerate(self.basis(model, mode))]

    def basis(self, model: str, mode: str) -> list[Direction]:
        """The directions the sliders move along: found from the model (computed once), or z's own axes."""
        generator = self.library.get(model)
        if mode not in MODES:
            raise InvalidInput(f"mode must be 'directions' or 'raw', got {shown(mode)}")
        if mode == "raw":
            return raw_directions(generator.config.latent_dim)
        return self._directions.get(model, lambda: self._find_directions(generator))

    def _find_directions(self, generator: Generator) -> list[Direction]:
        """The model's directions: kept beside its weights once found (the shipped models carry theirs: a first
        visitor's sliders need no ~4.5 CPU-seconds), else found now, and kept when the folder can be written."""
        weights = weights_version(generator)
        kept = generator.folder / DIRECTIONS_FILE if weights else None
        found = load_directions(kept, weights) if kept else None
        if found is None:
            with self._slow:
                found = find_directions(generator, seed=0, digit_scorer=self.classifier().digit_scores)
            if kept:
                try:
                    save_directions(kept, found, weights)
                except OSError:  # a read-only folder: found again after a restart
                    pass
        return found

    def latent(self, model: str, seed, digit, mode: str, amounts, z=None) -> np.ndarray:
        """One digit, 280x280: `seed`'s latent (or `z`, a latent found elsewhere) moved amounts[i] units along
        slider i (see latent_directions). digit: the digit a class-conditional model draws (unconditional models
        ignore it)."""
        return self.draw_digit(self.latent_request(model, seed, digit, mode, amounts, z))

    def latent_request(self, model: str, seed, digit, mode: str, amounts, z=None) -> Digits:
        """latent's arguments, checked: the one latent it draws (no drawing yet)."""
        generator = self.library.get(model)
        z = self.explorer_latent(model, seed, mode, amounts, z)
        return Digits(generator, z[None], one_digit(generator, digit, 1))

    def draw_digit(self, digits: Digits) -> np.ndarray:
        """The explorer's 280x280 uint8 digit of a one-latent request."""
        image = to_uint8(digits.generator.images(digits.z, digits.labels))
        return make_grid(image, 1, 1, pad=0, scale=DIGIT_SCALE)

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
            checks.latent(z, generator.config.latent_dim)
        return move(start, basis, amounts)

    def interpolate(self, model: str, seed_a, seed_b, frames, digit) -> tuple[np.ndarray, np.ndarray]:
        """(a frame strip, the frames) of the spherical path from seed_a's latent to seed_b's."""
        return self.draw_interpolation(self.interpolation_request(model, seed_a, seed_b, frames, digit))

    def interpolation_request(self, model: str, seed_a, seed_b, frames, digit) -> Digits:
        """interpolate's arguments, checked: the latents of its frames (no drawing yet)."""
        generator = self.library.get(model)
        z = self.interpolation_latents(model, seed_a, seed_b, frames)
        return Digits(generator, z, one_digit(generator, digit, len(z)))

    def draw_interpolation(self, digits: Digits) -> tuple[np.ndarray, np.ndarray]:
        """(the strip, the uint8 frames) of an interpolation request."""
        images = to_uint8(digits.generator.images(digits.z, digits.labels))
        return make_grid(images, 1, len(images), scale=STRIP_SCALE), images

    def interpolation_latents(self, model: str, seed_a, seed_b, frames) -> np.ndarray:
        """The float32 latents of `frames` points on the great circle from seed_a's latent to seed_b's."""
        generator = self.library.get(model)
        frames = checks.whole(frames, "frames", 2, MAX_FRAMES)
        return interpolation(check_seed(seed_a), check_seed(seed_b), frames, generator.config.latent_dim)

    # --- in the visitor's browser -----------------------------------------------------------------------------

    def browser_model(self, model: str) -> dict:
        """What the page needs to draw `model` itself: its inputs, and its ONNX file (its sha256 and size), or
        why the server draws it for now."""
        info = self.library.info(model)
        config = self.library.get(model).config
        found, reason = self.browser.file(model)
        return {"model": model, "latent_dim": config.latent_dim, "conditional": config.conditional,
                "latent_code": config.latent_code, "description": info["description"],
                "onnx": {"sha256": found.sha256, "bytes": found.size} if found else None, "reason": reason,
                "pending": reason == MAKING}  # then ask again in a few seconds


# --- what names a result ---------------------------------------------------------------------------------------

def weights_version(generator: Generator) -> str | None:
    """The sha256 of a generator's weights file (None when it has none): what its pixels depend on besides the
    request."""
    return current_sha256(generator.folder / WEIGHTS_FILE) if generator.folder else None


def _key(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


# --- grid policy (pure) -------------------------------------------------------------------------------------------

def grid_labels(generator: Generator, digit, n: int) -> tuple[np.ndarray | None, int, int]:
    """(labels, rows, cols) of a grid of n: conditional models draw one digit, or a row per digit."""
    if digit in (None, "", ALL_DIGITS):
        digit = ALL_DIGITS
    else:
        try:
            digit = checks.digit(digit)
        except InvalidInput:
            raise InvalidInput(f"digit must be one of 0-9 or {ALL_DIGITS!r}, got {shown(digit)}") from None
    if not generator.config.conditional:
        if digit != ALL_DIGITS:
            raise InvalidInput(f"{generator.name} is unconditional: it cannot be asked for a digit (use "
                               f"{ALL_DIGITS!r})")
        return None, *grid_shape(n)
    if digit == ALL_DIGITS:
        cols = math.ceil(n / NUM_CLASSES)
        return np.repeat(np.arange(NUM_CLASSES), cols), NUM_CLASSES, cols
    return np.full(n, digit), *grid_shape(n)


def one_digit(generator: Generator, digit, n: int) -> np.ndarray | None:
    """Labels for n latents of one digit; unconditional models ignore the digit (the page hides its picker)."""
    if not generator.config.conditional:
        return None
    try:
        return np.full(n, checks.digit(digit))
    except InvalidInput:
        raise InvalidInput(f"{generator.name} is class-conditional: choose a digit 0-9, got {shown(digit)}") from None


def display_scale(cols: int) -> int:
    """Upscaling so a grid is about 600 px wide: big enough to see strokes, small enough to download."""
    return max(2, min(8, 600 // (cols * 30)))
