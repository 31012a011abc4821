"""Find a digit in latent space: the z (and label, or latent code) whose image best matches a target.

Restarts start from the best of many random draws (one forward pass of G, shared by every target), then each is
optimised with Adam inside one traced loop: loss = pixel MSE (+ a small Gaussian prior on z, + optionally the
shipped classifier's feature distance). The label or code of each restart stays fixed while z moves; a code
model's z is projected back into its code's region after every step, so the z found draws the same digit when
the Latent explorer draws it. The best restart by pixel error wins. Batched over targets for the coverage report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_gan.errors import InvalidInput
from mnist_gan.images import latents
from mnist_gan.model.architectures import NUM_CLASSES
from mnist_gan.model.generator import Generator

from .critic import SoftGenerator, one_hot


@dataclass(frozen=True)
class Search:
    """How hard to look. The defaults were chosen by measurement (bench/README.md: Inversion loss)."""

    restarts: int = 4  # optimised in parallel per target
    draws: int = 400  # random draws the restarts are picked from (for an unknown digit: 200 per digit)
    steps: int = 200
    lr: float = 0.1
    prior: float = 1e-3  # weight of mean(z^2): keeps z where G was trained (N(0, I))
    features: float = 0.0  # weight of the classifier's feature distance (0: pixels only)
    frames: int = 16  # snapshots of the winning restart kept for the path animation


@dataclass(frozen=True)
class Inversion:
    """The best match per target: latents, labels (the label or code; None for plain unconditional models),
    reconstructions in [-1, 1], RMS pixel errors on a 0-1 scale, and the winner's path."""

    z: np.ndarray  # float32 (T, latent_dim)
    labels: np.ndarray | None  # int (T,)
    images: np.ndarray  # float32 (T, 28, 28, 1)
    errors: np.ndarray  # float64 (T,)
    path: np.ndarray  # float32 (T, frames, 28, 28, 1): the winner's image along the optimisation


def rms_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root-mean-square difference per image of [-1, 1] images, on a 0 (black) to 1 (white) pixel scale."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    return np.sqrt(np.mean(((a - b) / 2.0) ** 2, axis=1))


class Inverter:
    """Inversion for one generator; the traced loop is built once and reused (classifier: for feature loss)."""

    def __init__(self, generator: Generator, classifier=None):
        self.generator, self.config = generator, generator.config
        self.soft = SoftGenerator(generator)
        self.classifier = classifier
        self._loops: dict = {}

    def invert(self, targets: np.ndarray, labels=None, settings: Search = Search(), seed: int = 0) -> Inversion:
        """Invert [-1, 1] targets (T, 28, 28[, 1]). labels: a conditional model's digit per target (None: every
        digit is tried); ignored by unconditional models (a code model tries every code)."""
        targets = np.asarray(targets, np.float32).reshape(-1, 28, 28, 1)
        t, r = len(targets), settings.restarts
        if settings.features and self.classifier is None:
            raise InvalidInput("the feature loss needs the classifier")
        z0, rows = self._starts(targets, labels, settings, seed)  # (T*R, d), (T*R, classes)
        target_rows = np.repeat(targets, r, axis=0)
        # XLA compiles once per batch size: padding to a power of two bounds the compilations (and their seconds)
        pad = bucket(len(z0)) - len(z0)
        z, snapshots = self._loop(settings)(*(np.concatenate([a, a[:1].repeat(pad, axis=0)])
                                              for a in (z0, rows, target_rows)), settings)
        z, snapshots = z[:len(z0)], snapshots[:, :len(z0)]
        # drawn the one way the app draws (a code model's code comes from z itself): what the explorer will show
        labels_of = rows.argmax(axis=1) if self.config.conditional else None
        images = self.generator.images(z, labels_of)
        errors = rms_error(images, target_rows).reshape(t, r)
        best = np.argmin(errors, axis=1) + np.arange(t) * r
        chosen = snapshots[:, best]  # (frames, T, d)
        frames = chosen.shape[0]
        path_rows = np.repeat(rows[best], frames, axis=0) if self.soft.classes else None
        path = self.soft.images(chosen.transpose(1, 0, 2).reshape(t * frames, -1), path_rows)
        found = rows[best].argmax(axis=1) if self.soft.classes else None
        return Inversion(z[best], found, images[best], errors.reshape(-1)[best],
                         path.reshape(t, frames, 28, 28, 1))

    # --- the restarts -----------------------------------------------------------------------------------------

    def _starts(self, targets: np.ndarray, labels, settings: Search, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The `restarts` best random draws for each target by pixel distance, with their label/code rows."""
        d, classes = self.config.latent_dim, self.soft.classes
        if self.config.conditional and labels is not None:
            labels = np.asarray(labels, np.int64).reshape(-1)
            if len(labels) != len(targets) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
                raise InvalidInput("labels must be one digit 0-9 per target")
            # the same draws for every digit: each target picks among its own digit's images
            z = latents(seed, settings.draws, d)
            picked = []
            for digit in np.unique(labels):
                mine = np.flatnonzero(labels == digit)
                images = self.soft.images(z, one_hot(np.full(len(z), digit)))
                best = _closest(images, targets[mine], settings.restarts)
                picked.append((mine, best))
            order = np.empty((len(targets), settings.restarts), np.int64)
            for mine, best in picked:
                order[mine] = best
            digits = np.repeat(labels, settings.restarts)
            return z[order.reshape(-1)], one_hot(digits)
        z = latents(seed, settings.draws * (NUM_CLASSES // 2 if self.config.conditional else 1), d)
        if self.config.conditional:  # every digit in turn, as an unconditional draw of this model
            draw_rows = one_hot(np.arange(len(z)) % NUM_CLASSES)
        elif classes:
            draw_rows = one_hot(self.soft.code_of(z), classes)
        else:
            draw_rows = np.zeros((len(z), 1), np.float32)
        images = self.soft.images(z, draw_rows if classes else None)
        codes = draw_rows.argmax(axis=1)
        if classes and not self.config.conditional and settings.restarts <= len(np.unique(codes)):
            # a code model: each restart in another code's region, since z never leaves its code's region while
            # it moves; the nearest draws alone can all share one wrong code (measured: 1 of 8 own samples of the
            # retrained mlp-uncond came back at error 0.077 that way)
            order = _closest_by_group(images, targets, codes, settings.restarts).reshape(-1)
        else:
            order = _closest(images, targets, settings.restarts).reshape(-1)
        return z[order], draw_rows[order]

    # --- the traced optimisation --------------------------------------------------------------------------------

    def _loop(self, settings: Search):
        key = (settings.steps, settings.frames, bool(settings.features))
        if key not in self._loops:
            self._loops[key] = self._build(settings.steps, settings.frames, bool(settings.features))
        loop = self._loops[key]

        def run(z0, rows, targets, settings: Search):
            z, snapshots = loop(np.asarray(z0, np.float32), np.asarray(rows, np.float32), targets,
                                np.float32(settings.lr), np.float32(settings.prior), np.float32(settings.features))
            return z.numpy(), snapshots.numpy()

        return run

    def _build(self, steps: int, frames: int, with_features: bool):
        import tensorflow as tf

        soft, code = self.soft, self.config.latent_code
        features = self.classifier.model if with_features else None
        beta1, beta2 = 0.9, 0.999

        def loss_of(z, rows, targets, target_features, prior, weight):
            x = soft(z, rows)
            loss = tf.reduce_mean(tf.square(x - targets), axis=[1, 2, 3]) + prior * tf.reduce_mean(tf.square(z), 1)
            if features is not None:
                mine = features(x, training=False)[1]
                loss += weight * tf.reduce_mean(tf.square(mine - target_features), axis=1)
            return loss

        def project(z, rows):
            if not code:
                return z
            head, rest = z[:, :code], z[:, code:]
            chosen = tf.reduce_sum(head * rows, axis=1, keepdims=True)
            others = tf.reduce_max(head - rows * 1e9, axis=1, keepdims=True)
            raised = tf.maximum(chosen, others + 1e-3)
            return tf.concat([head + rows * (raised - chosen), rest], axis=1)

        # snapshot k is taken after step marks[k]: evenly spaced, the start and the end included
        slot = np.full(steps + 1, -1, np.int32)
        slot[np.round(np.linspace(0, steps, frames)).astype(int)] = np.arange(frames)
        slot = tf.constant(slot)

        def snapshot(shots, i, z):
            k = slot[i]
            return tf.cond(k >= 0, lambda: tf.tensor_scatter_nd_update(shots, [[k]], z[None]), lambda: shots)

        @tf.function(reduce_retracing=True, autograph=False, jit_compile=not with_features)
        def loop(z, rows, targets, lr, prior, weight):
            target_features = features(targets, training=False)[1] if features is not None else tf.zeros(())
            z = project(z, rows)
            shots = snapshot(tf.zeros(tf.concat([[frames], tf.shape(z)], 0)), 0, z)

            def body(i, z, m, v, shots):
                with tf.GradientTape() as tape:
                    tape.watch(z)
                    total = tf.reduce_sum(loss_of(z, rows, targets, target_features, prior, weight))
                gradient = tape.gradient(total, z)
                m = beta1 * m + (1 - beta1) * gradient
                v = beta2 * v + (1 - beta2) * gradient * gradient
                t = tf.cast(i + 1, tf.float32)
                z = project(z - lr * (m / (1 - beta1 ** t)) / (tf.sqrt(v / (1 - beta2 ** t)) + 1e-8), rows)
                return i + 1, z, m, v, snapshot(shots, i + 1, z)

            _, z, _, _, shots = tf.while_loop(lambda i, *_: i < steps, body,
                                              (tf.constant(0), z, tf.zeros_like(z), tf.zeros_like(z), shots))
            return z, shots

        return loop


def bucket(n: int) -> int:
    """The batch size n rows are padded to: the next power of two, at least 4."""
    return max(4, 1 << (max(n, 1) - 1).bit_length())


def _distances(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Squared pixel distances (T, N) from each target to each image."""
    a = np.asarray(images, np.float32).reshape(len(images), -1)
    b = np.asarray(targets, np.float32).reshape(len(targets), -1)
    return np.sum(b * b, 1)[:, None] + np.sum(a * a, 1)[None, :] - 2 * b @ a.T


def _closest(images: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Indices (T, k) of the k images nearest each target in pixel space."""
    k = min(k, len(images))
    return np.argpartition(_distances(images, targets), k - 1, axis=1)[:, :k]


def _closest_by_group(images: np.ndarray, targets: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Indices (T, k): for each target, the nearest image of each of the k groups whose nearest image is nearest."""
    distances = _distances(images, targets)
    best = np.stack([np.where(groups == g, distances, np.inf).argmin(axis=1) for g in np.unique(groups)], axis=1)
    ranked = np.argsort(np.take_along_axis(distances, best, axis=1), axis=1)[:, :k]
    return np.take_along_axis(best, ranked, axis=1)
