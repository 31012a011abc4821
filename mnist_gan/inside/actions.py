"""The Inside tab's actions over a model library: D's verdict and eye, "let D pull", inversion, style grid and
class morph, spot the fake. Validates every value a visitor sends; raises only package errors.

Everything slow and the same for everyone is computed once per model and kept: the discriminator, the score
distributions of real and generated digits, the inversion loop, the training digits for nearest neighbours.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_gan.data import SAMPLE_DATA, load_mnist, to_unit_range
from mnist_gan.errors import InvalidInput, MnistGanError, WeightsError, shown
from mnist_gan.images import check_seed, latents, make_grid, to_uint8
from mnist_gan.model.architectures import NUM_CLASSES
from mnist_gan.model.generator import DISCRIMINATOR_FILE, Generator, load_discriminator

from . import figures, spot
from .critic import Critic, SoftGenerator, one_hot
from .inversion import Inverter, Settings
from .pictures import read_image, to_mnist

MAX_RESTARTS, DEFAULT_RESTARTS = 16, 4
MAX_PULL_STEPS, DEFAULT_PULL_STEPS = 32, 12
MAX_MORPH_FRAMES = 16
MAX_Z = 10.0  # |z_i| beyond this is far outside N(0, 1): refused rather than drawn
DISTRIBUTION_N = 1_000  # real test digits and fresh samples D's verdict is compared with
TEST_DIGITS = 1_000  # the bundled sample's test digits: held out from every model
CACHED_ENTRIES = 24  # per-model entries kept (a model has up to 4: D, its score distributions, inversion loop, warm-up)


@dataclass(frozen=True)
class Digit:
    """An image as the models see it, and what is known about it."""

    image: np.ndarray  # float32 (28, 28, 1) in [-1, 1]
    origin: str  # in words, for the page
    label: int | None = None  # the true digit (a test digit) or the one asked for (a conditional sample)
    z: np.ndarray | None = field(default=None, compare=False)  # the latent of a generated digit


@dataclass(frozen=True)
class Figures:
    """A report (plain JSON-able values) and the pictures that go with it (uint8 arrays, or frames)."""

    report: dict
    images: dict


class Inside:
    def __init__(self, library, classifier, data_path: str | None = None, tally_path: str | Path | None = None):
        """library: the app's models; classifier: () -> the shipped Classifier (loaded once by the caller);
        data_path: MNIST for nearest training digits (None: the keras cache if present, else the sample)."""
        self.library, self.classifier, self.data_path = library, classifier, data_path
        self.rounds = spot.Rounds()
        self.tally = spot.FooledTally(tally_path) if tally_path else None
        self._cache: OrderedDict = OrderedDict()
        self._locks: dict = {}
        self._lock = threading.Lock()

    def _once(self, key, build):
        """build() once per key (concurrent callers wait for the first). The shared data (string keys) is kept for
        the app's life; per-model entries (tuple keys) only for the newest CACHED_ENTRIES, since trained and pulled
        models come and go (and a reloaded model is a new generator: its old entries would never be asked again)."""
        with self._lock:
            if key in self._cache:
                if isinstance(key, tuple):
                    self._cache.move_to_end(key)
                return self._cache[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            value = build()
            with self._lock:
                self._cache[key] = value
                self._locks.pop(key, None)
                per_model = [k for k in self._cache if isinstance(k, tuple)]
                for old in per_model[:max(0, len(per_model) - CACHED_ENTRIES)]:  # the least recently used first
                    del self._cache[old]
            return value

    # --- what the tab looks at ------------------------------------------------------------------------------

    def test_digits(self):
        """The bundled sample's 1,000 MNIST test digits and labels ([-1, 1]): no model trained on them."""
        def load():
            data = load_mnist(SAMPLE_DATA)
            return data.x_test, data.y_test
        return self._once("test", load)

    def digit(self, model: str, source: str, seed=0, index=0, digit=None, picture=None, z=None) -> Digit:
        """The image the tab looks at: "generated" (model + seed, or a latent z), "test" (a held-out MNIST test
        digit by index 0-999) or "picture" (drawn or uploaded: MNIST's preprocessing first)."""
        if source == "generated":
            generator = self.library.get(model)
            label = self._digit_for(generator, digit)
            if z is None:
                seed = check_seed(seed)
                z = latents(seed, 1, generator.config.latent_dim)[0]
                origin = f"generated by {model} from seed {seed}"
            else:
                z = check_latent(z, generator.config.latent_dim)
                origin = f"generated by {model} from the Latent explorer's latent"
            image = generator.images(z[None], None if label is None else [label])[0]
            return Digit(image, origin + (f" as a {label}" if label is not None else ""), label, z)
        if source == "test":
            x, y = self.test_digits()
            index = whole(index, "test digit index", 0, len(x) - 1)
            return Digit(x[index], f"MNIST test digit #{index} (a {y[index]}), held out from every model",
                         int(y[index]))
        if source == "picture":
            return as_digit(picture)
        raise InvalidInput(f"source must be 'generated', 'test' or 'picture', got {shown(source)}")

    def _digit_for(self, generator: Generator, digit) -> int | None:
        """A conditional model's digit (0-9); None for unconditional models, which must not be given one."""
        if digit in (None, "", "auto"):
            return 0 if generator.config.conditional else None
        value = as_int_digit(digit)
        if not generator.config.conditional:
            raise InvalidInput(f"{generator.name} is unconditional: it cannot be asked for a digit")
        return value

    # --- D's verdict and eye --------------------------------------------------------------------------------

    def critic(self, model: str) -> Critic:
        """`model`'s discriminator (WeightsError, saying so plainly, when the model was saved without it)."""
        generator = self.library.get(model)
        if generator.folder is None or not (generator.folder / DISCRIMINATOR_FILE).is_file():
            others = [name for name in self.library.names() if self.has_discriminator(name)]
            raise WeightsError(f"{model} was saved without its discriminator, and D's verdict, eye and pull need "
                               "it. " + (f"Models that have theirs: {', '.join(others)}." if others else ""))
        return self._once(("critic", model, id(generator)),
                          lambda: Critic(generator, load_discriminator(generator.folder, generator.config)))

    def has_discriminator(self, model: str) -> bool:
        """Whether `model`'s weights folder holds its discriminator (reads no weights)."""
        return (self.library.folder(model) / DISCRIMINATOR_FILE).is_file()

    def _d_label(self, critic: Critic, image: Digit | np.ndarray, digit) -> tuple[int | None, str]:
        """The digit a conditional D is told: the one asked, the image's own, else the classifier's reading."""
        if not critic.conditional:
            if digit not in (None, "", "auto"):
                raise InvalidInput(f"{critic.generator.name} is unconditional: its discriminator takes no digit")
            return None, ""
        if digit not in (None, "", "auto"):
            return as_int_digit(digit), "as asked"
        if isinstance(image, Digit) and image.label is not None:
            return image.label, "the image's own digit"
        probabilities, _ = self.classifier().predict(image.image if isinstance(image, Digit) else image)
        return int(probabilities[0].argmax()), "as the shipped classifier reads the image"

    def distributions(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """D's scores of the 1,000 held-out test digits and of 1,000 fresh samples (seed 0), computed once."""
        critic = self.critic(model)

        def compute():
            x, y = self.test_digits()
            generator = critic.generator
            labels = np.arange(DISTRIBUTION_N) % NUM_CLASSES if critic.conditional else None
            samples = generator.images(latents(0, DISTRIBUTION_N, generator.config.latent_dim), labels)
            return critic.scores(x, y if critic.conditional else None), critic.scores(samples, labels)
        return self._once(("distributions", model, id(critic)), compute)

    def discriminate(self, model: str, image, digit=None) -> Figures:
        """D's raw score of the image, its verdict, where it sits among real and generated digits, and the
        heatmap of d(logit)/d(pixel)."""
        critic = self.critic(model)
        seen = as_digit(image)
        label, told = self._d_label(critic, seen, digit)
        score = float(critic.scores(seen.image, None if label is None else [label])[0])
        logit, gradient = critic.saliency(seen.image, label)
        real, samples = self.distributions(model)
        report = {"model": model, "score": score, "says_real": bool(score > critic.threshold),
                  "threshold": critic.threshold, "loss": critic.config.loss,
                  "score_is": "a probability" if critic.loss.activation else "a logit", "logit": logit,
                  "real_below": float(np.mean(real < score)), "samples_below": float(np.mean(samples < score)),
                  "real_median": float(np.median(real)), "samples_median": float(np.median(samples)),
                  "origin": seen.origin}
        if label is not None:
            report.update({"digit": label, "digit_from": told})
        images = {"seen": figures.digit(seen.image), "heatmap": figures.saliency_figure(gradient, seen.image),
                  "histogram": figures.score_histogram(real, samples, score, critic.threshold,
                                                       probability=critic.loss.activation is not None)}
        return Figures(report, images)

    def d_pull(self, model: str, image, digit=None, steps=DEFAULT_PULL_STEPS) -> Figures:
        """Gradient ascent on the pixels towards "real": the frames and D's score after each step."""
        critic = self.critic(model)
        steps = whole(steps, "steps", 1, MAX_PULL_STEPS)
        seen = as_digit(image)
        label, told = self._d_label(critic, seen, digit)
        frames, scores = critic.pull(seen.image, label, steps)
        return Figures({"model": model, "scores": scores.tolist(), "threshold": critic.threshold, "steps": steps,
                        **({"digit": label, "digit_from": told} if label is not None else {})},
                       {"strip": strip(frames), "frames": to_uint8(frames)})

    def z_pull(self, model: str, seed=0, digit=None, steps=DEFAULT_PULL_STEPS, z=None) -> Figures:
        """G's own training signal: a generated digit's z moved up D's logit, as a strip of frames."""
        critic = self.critic(model)
        start = self.digit(model, "generated", seed=seed, digit=digit, z=z)
        steps = whole(steps, "steps", 1, MAX_PULL_STEPS)
        path, frames, scores = critic.z_pull(start.z, start.label, steps)
        return Figures({"model": model, "scores": scores.tolist(), "threshold": critic.threshold, "steps": steps,
                        "z_moved": float(np.linalg.norm(path[-1] - path[0]))},
                       {"strip": strip(frames), "frames": to_uint8(frames)})

    # --- inversion ------------------------------------------------------------------------------------------

    def inverter(self, model: str) -> Inverter:
        generator = self.library.get(model)
        return self._once(("inverter", model, id(generator)), lambda: Inverter(generator))

    def prepare(self, model: str) -> None:
        """Compile `model`'s inversion loop in a background thread, once (XLA takes seconds; a visitor opening
        the tab reads D's verdict meanwhile)."""
        def start():
            threading.Thread(target=self._warm, args=(model,), daemon=True, name=f"prepare-{model}").start()
            return True
        self.library.get(model)
        self._once(("prepare", model), start)

    def _warm(self, model: str) -> None:
        try:
            x, _ = self.test_digits()
            self.inverter(model).invert(x[:1], None, Settings(restarts=DEFAULT_RESTARTS))
        except Exception:  # a model that cannot be inverted says so when a visitor asks; nothing to do here
            pass

    def training_digits(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Training digits for nearest neighbours: uint8 (N, 784), labels, and which set in words."""
        def load():
            keras_cache = Path.home() / ".keras" / "datasets" / "mnist.npz"
            path = self.data_path or (str(keras_cache) if keras_cache.is_file() else None)
            try:
                data = load_mnist(path) if path else None
            except MnistGanError:  # a missing or unreadable file: the bundled sample instead
                data = None
            if data is None:
                data, words = load_mnist(SAMPLE_DATA), "the bundled sample's 2,000 training digits"
            else:
                words = f"the MNIST training set ({len(data.x_train):,} digits)"
            return to_uint8(data.x_train).reshape(len(data.x_train), -1), data.y_train, words
        return self._once("training", load)

    def nearest(self, image: np.ndarray) -> tuple[int, float]:
        """(index, RMS distance on a 0-1 scale) of the training digit nearest a [-1, 1] image in pixels."""
        train, _, _ = self.training_digits()
        q = ((np.asarray(image, np.float32).reshape(-1) + 1.0) / 2.0)
        best, distance = -1, math.inf
        for start in range(0, len(train), 10_000):  # float copies of 10,000 digits at a time (31 MB)
            block = train[start:start + 10_000].astype(np.float32) / 255.0
            d = np.sum(block * block, axis=1) - 2.0 * block @ q
            i = int(np.argmin(d))
            if d[i] < distance:
                best, distance = start + i, float(d[i])
        return best, math.sqrt(max(distance + float(q @ q), 0.0) / q.size)

    def invert(self, model: str, image, digit=None, restarts=DEFAULT_RESTARTS, seed: int = 0) -> Figures:
        """The z (and digit or code) whose image best matches `image`: the reconstruction, its error, the
        optimisation path, the nearest training digit, and D's score of the reconstruction (when D is there)."""
        generator = self.library.get(model)
        restarts = whole(restarts, "restarts", 1, MAX_RESTARTS)
        seen = as_digit(image)
        label = None
        if digit not in (None, "", "auto"):
            label = self._digit_for(generator, digit)
        started = time.perf_counter()
        found = self.inverter(model).invert(seen.image[None], None if label is None else [label],
                                            Settings(restarts=restarts), seed=seed)
        seconds = time.perf_counter() - started
        train, train_labels, words = self.training_digits()
        index, distance = self.nearest(seen.image)
        z, reconstruction = found.z[0], found.images[0]
        report = {"model": model, "z": [float(v) for v in z], "error": float(found.errors[0]),
                  "error_is": "root-mean-square pixel difference, pixels from 0 (black) to 1 (white)",
                  "restarts": restarts, "steps": Settings().steps, "seconds": round(seconds, 3),
                  "nearest_training": {"index": index, "digit": int(train_labels[index]), "error": distance,
                                       "among": words}, "origin": seen.origin}
        if generator.config.conditional:
            report["digit"] = int(found.labels[0])
        elif generator.config.latent_code:
            report["code"] = int(found.labels[0])
        try:
            critic = self.critic(model)
            told = [report["digit"]] if "digit" in report else None
            report["d_score"] = float(critic.scores(reconstruction, told)[0])
            report["d_says_real"] = report["d_score"] > critic.threshold
        except WeightsError as e:  # no discriminator: the inversion needs only G
            report["d_score"], report["d_note"] = None, str(e)
        probabilities, _ = self.classifier().predict(reconstruction)
        report["classifier_reads"] = int(probabilities[0].argmax())
        nearest = to_unit_range(train[index].reshape(28, 28))[0]
        return Figures(report, {"seen": figures.digit(seen.image), "reconstruction": figures.digit(reconstruction),
                                "path": to_uint8(found.path[0]), "nearest": figures.digit(nearest)})

    # --- conditional models: style grid and class morph -----------------------------------------------------

    def _conditional(self, model: str) -> Generator:
        generator = self.library.get(model)
        if not generator.config.conditional:
            raise InvalidInput(f"{model} is unconditional: the style grid and the class morph need a "
                               "class-conditional model (mlp-cond)")
        return generator

    def _z(self, generator: Generator, seed, z) -> np.ndarray:
        return check_latent(z, generator.config.latent_dim) if z is not None else \
            latents(check_seed(seed), 1, generator.config.latent_dim)[0]

    def style_grid(self, model: str, seed=0, z=None) -> np.ndarray:
        """One z drawn as each of the ten digits: uint8 strip."""
        generator = self._conditional(model)
        z = self._z(generator, seed, z)
        images = generator.images(np.repeat(z[None], NUM_CLASSES, axis=0), np.arange(NUM_CLASSES))
        return make_grid(to_uint8(images), 1, NUM_CLASSES, scale=3)

    def morph(self, model: str, digit_a, digit_b, seed=0, frames=10, z=None) -> tuple[np.ndarray, np.ndarray]:
        """One z drawn while its one-hot label slides from digit_a to digit_b: (strip, frames uint8)."""
        generator = self._conditional(model)
        a, b = as_int_digit(digit_a), as_int_digit(digit_b)
        frames = whole(frames, "frames", 2, MAX_MORPH_FRAMES)
        z = self._z(generator, seed, z)
        t = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]
        weights = (1 - t) * one_hot([a]) + t * one_hot([b])
        images = to_uint8(SoftGenerator(generator).images(np.repeat(z[None], frames, axis=0), weights))
        return make_grid(images, 1, frames, scale=3), images

    # --- spot the fake --------------------------------------------------------------------------------------

    def spot_round(self, model: str) -> tuple[str, np.ndarray]:
        """A new round: its id and 16 uint8 digits, half real test digits, half `model`'s, in a random order
        known only here."""
        generator = self.library.get(model)
        rng = np.random.default_rng(secrets.randbits(64))
        fake = spot.layout(rng)
        x, _ = self.test_digits()
        n = int(fake.sum())
        reals = to_uint8(x[rng.choice(len(x), len(fake) - n, replace=False)])
        labels = rng.integers(0, NUM_CLASSES, n) if generator.config.conditional else None
        fakes = generator.generate(int(rng.integers(0, 2**32)), n, labels)
        images = np.empty((len(fake), 28, 28), np.uint8)
        images[fake], images[~fake] = fakes, reals
        return self.rounds.add(model, fake), images

    def spot_answer(self, round_id, marked) -> dict:
        """The truth of a round, how the visitor did, and the model's updated fooled-rate."""
        marks = spot.marked_positions(marked)
        found = self.rounds.take(round_id)
        outcome = spot.judge(found.fake, marks)
        if self.tally is not None:
            self.tally.add(found.model, outcome)
        return {"model": found.model, "fake": [int(i) + 1 for i in np.flatnonzero(found.fake)],
                "marked": [int(i) + 1 for i in np.flatnonzero(marks)],
                "right": int(np.sum(found.fake == marks)), "of": len(marks), **outcome,
                "record": self.spot_record(found.model)}

    def spot_record(self, model: str) -> dict:
        """`model`'s human fooled-rate (with its interval and count) beside its cFID."""
        generator = self.library.get(model)
        record = self.tally.record(model) if self.tally else {"model": model, "judgements": 0}
        record["cfid"] = generator.metrics.get("cfid")
        record["cfid_n"] = generator.metrics.get("n")
        return record


# --- validation (pure) ----------------------------------------------------------------------------------------

def as_digit(picture) -> Digit:
    """A Digit as is; any picture (file path, bytes, array) through MNIST's preprocessing."""
    if isinstance(picture, Digit):
        return picture
    if picture is None:
        raise InvalidInput("no image: draw a digit, upload one, or pick a generated or test digit")
    return Digit(to_mnist(read_image(picture)), "your picture, after MNIST's preprocessing")


def whole(value, name: str, low: int, high: int) -> int:
    """A whole number in [low, high], or InvalidInput naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)) or not math.isfinite(value) \
            or value != int(value) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    return int(value)


def as_int_digit(value) -> int:
    """A digit 0-9 from a picker ("3") or an API call (3)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 9:
        raise InvalidInput(f"digit must be one of 0-9, got {shown(value)}")
    return int(value)


def check_latent(z, latent_dim: int) -> np.ndarray:
    """A latent vector from an API call or the page: latent_dim finite numbers within +-MAX_Z."""
    if isinstance(z, np.ndarray):
        z = z.tolist()
    if not isinstance(z, (list, tuple)) or len(z) != latent_dim or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
        raise InvalidInput(f"z must be a list of {latent_dim} numbers, got {shown(z)}")
    z = np.asarray(z, np.float64)
    if not np.all(np.isfinite(z)) or np.abs(z).max() > MAX_Z:
        raise InvalidInput(f"z's values must be finite and within +-{MAX_Z:g}")
    return z.astype(np.float32)


def strip(frames: np.ndarray) -> np.ndarray:
    """Frames (n, 28, 28[, 1]) in a row, enlarged 3x: uint8."""
    return make_grid(to_uint8(frames), 1, len(frames), scale=3)

