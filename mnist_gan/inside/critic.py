"""What the discriminator sees, and the generator drawn with soft labels: the Inside tab's model math.

D's "raw score" is what D outputs: a probability for the "bce" loss (the recipe's sigmoid), a logit for "hinge"; it
says "real" above the loss's `threshold`. Gradients are taken of D's *logit* (before any sigmoid): a confident D's
probability is flat (p(1-p) ~ 0), its logit is not, and the logit's gradient points the same way.

Each image is judged alone, as if G drew nothing else: a D trained on packs of m images (PacGAN, config.pack)
scores it in a pack of m copies of itself (its gradient is the sum over the copies), and a D with the minibatch-std
feature runs in inference mode, where every image is its own group; so a score never depends on what else was
scored with it, and real digits and samples are scored the same way.

The conditional generator and the latent-code generator take an integer label and one-hot it inside the model;
`SoftGenerator` calls the same layers with a one-hot row given directly, so labels can be interpolated (a class
morph) and a label or code can be held fixed while z is optimised. All images are [-1, 1], (n, 28, 28, 1).
"""

from __future__ import annotations

import numpy as np

from mnist_gan.errors import InvalidInput
from mnist_gan.model.architectures import NUM_CLASSES, copies
from mnist_gan.model.generator import Generator
from mnist_gan.model.losses import loss_for

PULL_STEP = 0.1  # pixels: each "let D pull" step moves the most sensitive pixel by this much ([-1, 1] range)
Z_STEP = 0.25  # latent units per "follow D in z" step (z ~ N(0, I): a typical |z| is 10 for 100 dimensions)


def one_hot(labels, classes: int = NUM_CLASSES) -> np.ndarray:
    """float32 (n, classes) one-hot rows of integer labels."""
    return np.eye(classes, dtype=np.float32)[np.asarray(labels, np.int64).reshape(-1)]


class SoftGenerator:
    """G as a function of (z, one_hot): the model's own layers after its one-hot encoding, so any row of
    non-negative weights summing to 1 (a soft label) can be fed. Unconditional models without a code ignore it."""

    def __init__(self, generator: Generator):
        from keras import layers

        self.generator, self.config = generator, generator.config
        self.classes = self.config.latent_code or (NUM_CLASSES if self.config.conditional else 0)
        model = generator.model
        if not self.classes:
            self._layers = None
        else:
            # Both architectures are a chain after [z, one_hot] are joined (architectures.py): replay that chain
            concat = next(layer for layer in model.layers if isinstance(layer, layers.Concatenate))
            self._concat, self._layers = concat, model.layers[model.layers.index(concat) + 1:]

    def __call__(self, z, weights=None):
        """Images for latents z and one-hot (or soft) rows `weights` (ignored without labels or code): a tensor."""
        if self._layers is None:
            return self.generator.model(z, training=False)
        x = self._concat([z, weights])
        for layer in self._layers:
            x = layer(x, training=False)
        return x

    def code_of(self, z: np.ndarray) -> np.ndarray | None:
        """The label/code row a plain draw of z uses for a latent-code model (its argmax); None otherwise."""
        return np.argmax(np.asarray(z)[:, :self.config.latent_code], axis=1) if self.config.latent_code else None

    def images(self, z: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Float images (n, 28, 28, 1) in [-1, 1] from z and soft label rows (numpy in, numpy out)."""
        z = np.asarray(z, np.float32)
        if weights is None and self.classes:
            raise InvalidInput("this model needs a label row per latent")
        weights = None if weights is None else np.asarray(weights, np.float32)
        return self._traced(z, weights if weights is not None else np.zeros((len(z), 1), np.float32)).numpy()

    @property
    def _traced(self):
        if not hasattr(self, "_call"):
            import tensorflow as tf

            self._call = tf.function(lambda z, w: self(z, w), reduce_retracing=True)
        return self._call


class Critic:
    """A model's discriminator, ready to score images and to say which pixels (or which z steps) it prefers."""

    def __init__(self, generator: Generator, discriminator):
        import tensorflow as tf

        self.generator, self.config = generator, generator.config
        self.loss = loss_for(self.config)
        self.threshold = float(self.loss.threshold)
        self.model = discriminator
        self.soft = SoftGenerator(generator)
        self._logit_model = logit_function(discriminator, self.loss.activation is not None)
        self._score = tf.function(lambda x, y: self._first(self.model(self._inputs(x, y), training=False)),
                                  reduce_retracing=True)
        self._grad = tf.function(self._logit_and_gradient, reduce_retracing=True)
        self._z_grad = tf.function(self._z_logit_and_gradient, reduce_retracing=True)

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def _inputs(self, x, labels):
        # a packing D (PacGAN) judges m images at once: each image is judged alone, in a pack of copies of itself
        x = copies(x, self.config.pack)
        return [x, labels] if self.conditional else x

    @staticmethod
    def _first(outputs):
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs  # a code model also guesses the code

    def _logit(self, x, labels):
        return self._logit_model(self._inputs(x, labels))[:, 0]

    def _logit_and_gradient(self, x, labels):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            logit = self._logit(x, labels)
            total = tf.reduce_sum(logit)
        return logit, tape.gradient(total, x)

    def _z_logit_and_gradient(self, z, weights, labels):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(z)
            x = self.soft(z, weights)
            logit = self._logit(x, labels)
            total = tf.reduce_sum(logit)
        return x, logit, tape.gradient(total, z)

    def _labels(self, labels, n: int) -> np.ndarray:
        if not self.conditional:
            return np.zeros((n, 1), np.int32)  # unused: keeps one traced signature
        labels = np.asarray(labels, np.int32).reshape(-1, 1)
        if len(labels) != n or labels.min() < 0 or labels.max() >= NUM_CLASSES:
            raise InvalidInput("a conditional model's discriminator needs one digit 0-9 per image")
        return labels

    def scores(self, images: np.ndarray, labels=None) -> np.ndarray:
        """D's raw output for [-1, 1] images (n, 28, 28[, 1]): float64 (n,)."""
        x = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
        out = [self._score(x[i:i + 1000], self._labels(None if labels is None else np.asarray(labels)[i:i + 1000],
                                                       len(x[i:i + 1000]))).numpy()
               for i in range(0, len(x), 1000)]
        return np.concatenate(out).astype(np.float64).reshape(-1)

    def saliency(self, image: np.ndarray, label=None) -> tuple[float, np.ndarray]:
        """(D's logit, d logit / d pixel as float64 (28, 28)) for one [-1, 1] image."""
        x = np.asarray(image, np.float32).reshape(1, 28, 28, 1)
        logit, gradient = self._grad(x, self._labels(None if label is None else [label], 1))
        return float(logit.numpy()[0]), gradient.numpy().reshape(28, 28).astype(np.float64)

    def pull(self, image: np.ndarray, label=None, steps: int = 12,
             step: float = PULL_STEP) -> tuple[np.ndarray, np.ndarray]:
        """Gradient ascent on the pixels towards "real": (frames (steps+1, 28, 28, 1), D's raw score of each).

        Each step moves every pixel along D's logit gradient, scaled so the most sensitive pixel moves by `step`
        (a normalised step: the gradient's size differs by orders of magnitude between models), then clips to
        [-1, 1]; a step that lowers the score is halved and tried again, up to 3 times (the last try is taken)."""
        x = np.asarray(image, np.float32).reshape(1, 28, 28, 1)
        labels = self._labels(None if label is None else [label], 1)
        told = labels[:, 0] if self.conditional else None
        frames, score = [x[0]], self.scores(x, told)[0]
        for _ in range(steps):
            _, gradient = self._grad(x, labels)
            gradient = gradient.numpy()
            direction = gradient / (np.abs(gradient).max() + 1e-12)
            size = step
            for _ in range(4):  # a full step can overshoot a ridge of D's score: full, 1/2, 1/4, 1/8 while it falls
                moved = np.clip(x + size * direction, -1.0, 1.0).astype(np.float32)
                moved_score = self.scores(moved, told)[0]
                if moved_score >= score:
                    break
                size /= 2
            x, score = moved, moved_score
            frames.append(x[0])
        frames = np.stack(frames)
        return frames, self.scores(frames, np.repeat(labels[:, 0], len(frames)) if self.conditional else None)

    def z_pull(self, z: np.ndarray, label=None, steps: int = 12,
               step: float = Z_STEP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """G's own training signal: z moved up D's logit through G, `step` latent units per step (the label, or a
        code model's code, held fixed). (latents (steps+1, d), frames (steps+1, 28, 28, 1), D's raw scores)."""
        z = np.asarray(z, np.float32).reshape(1, -1)
        code = self.soft.code_of(z)
        row = one_hot([label if self.conditional else code[0]], self.soft.classes) if self.soft.classes \
            else np.zeros((1, 1), np.float32)
        labels = self._labels(None if label is None else [label], 1)
        path = [z[0]]
        for _ in range(steps):
            _, _, gradient = self._z_grad(z, row, labels)
            gradient = gradient.numpy()
            z = (z + step * gradient / (np.linalg.norm(gradient) + 1e-12)).astype(np.float32)
            if code is not None:  # stay in the code's region, so a plain draw of z shows the same digit shape
                z = keep_code(z, code, self.config.latent_code)
            path.append(z[0])
        path = np.stack(path)
        frames = self.soft.images(path, np.repeat(row, len(path), axis=0) if self.soft.classes else None)
        return path, frames, self.scores(frames, np.repeat(labels[:, 0], len(frames)) if self.conditional else None)


def keep_code(z: np.ndarray, code: np.ndarray, width: int, margin: float = 1e-3) -> np.ndarray:
    """z with each row's code entry raised, where needed, just above its other code entries, so that
    argmax(z[:width]) stays `code` (a latent-code model reads its code as that argmax). z (n, d), code (n,)."""
    z = np.array(z, np.float32, copy=True)
    rows, head = np.arange(len(z)), z[:, :width].copy()
    head[rows, code] = -np.inf
    z[rows, code] = np.maximum(z[rows, code], head.max(axis=1) + margin)
    return z


def logit_function(discriminator, has_activation: bool):
    """(inputs) -> D's score logit, (n, 1) (D itself when it has no output activation)."""
    if not has_activation:
        return lambda inputs: Critic._first(discriminator(inputs, training=False))
    import keras

    if "activation" in [layer.name for layer in discriminator.layers]:  # a separate sigmoid after the projection
        before = keras.Model(discriminator.inputs, discriminator.get_layer("activation").input)
        return lambda inputs: before(inputs, training=False)
    # the recipe's Dense(1, sigmoid): its kernel and bias applied to its input, without the sigmoid
    score = discriminator.get_layer("score")
    features = keras.Model(discriminator.inputs, score.input)
    return lambda inputs: keras.ops.matmul(features(inputs, training=False), score.kernel) + score.bias
