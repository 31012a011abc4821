"""Architectures, one registry: each entry builds a (generator, discriminator) pair from a GANConfig.

A variant plugs in by adding an entry here; the training step never branches on the architecture.
Generators map z (and a digit label when conditional, or z's latent code) to 28x28x1 images in [-1, 1].
Discriminators map an image (and label) to one score, through the output activation the loss asks for (a
probability for "bce", a raw logit for "hinge"); with a latent code they also guess the code (logits), as
InfoGAN's Q head.
Generators use only standard Keras layers, so a saved generator loads in Keras safe mode. A discriminator may hold
this module's MinibatchStdDev (no weights); discriminators are only ever rebuilt from the config.

The mode-coverage options (issue 25) change D's input or layers, or the widths, only when set: with PacGAN packing
(`config.pack` = m) D's input is m images stacked as channels, (28, 28, m), and it returns one score per pack (and,
with a latent code, m guesses of the code side by side); `pack` and `copies` make those inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import keras
from keras import initializers, layers, ops

from .losses import LOSSES

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


@dataclass(frozen=True)
class Architecture:
    generator: Callable  # (config, seeds=Seeds(config.seed)) -> keras.Model
    discriminator: Callable  # (config, seeds=Seeds(config.seed)) -> keras.Model
    jit_compile: bool  # XLA: a large win for dense layers, a loss for convolutions on CPU (measured)
    description: str


def pack(images, m: int):
    """(B, 28, 28, 1) -> (B / m, 28, 28, m): each m consecutive images stacked as channels, one PacGAN pack."""
    if m == 1:
        return images
    x = ops.reshape(images, (-1, m, *IMAGE_SHAPE[:2]))
    return ops.transpose(x, (0, 2, 3, 1))


def copies(images, m: int):
    """(n, 28, 28, 1) -> (n, 28, 28, m): each image packed with m - 1 copies of itself, so a packing D can judge
    one image alone (the atlas and the Inside tab: as if G drew nothing else)."""
    return images if m == 1 else ops.repeat(images, m, axis=-1)


class MinibatchStdDev(layers.Layer):
    """Karras et al. 2018: one more feature for every sample, the standard deviation of each feature over its
    group of `group_size` consecutive samples, averaged over the features. A generator that draws too few kinds of
    digit gives its batches a telling low value, so D can see the lack of variety and G is pushed to spread.

    In training the groups are consecutive `group_size` samples (the whole batch when it does not divide); at
    inference every sample is its own group (the feature is then sqrt(EPSILON), as for a batch of copies of it), so
    a score never depends on what else was scored with it."""

    EPSILON = 1e-8

    def __init__(self, group_size: int, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, x, training=False):
        if not training:
            return ops.concatenate([x, ops.full_like(x[..., :1], self.EPSILON ** 0.5)], axis=-1)
        n, features = x.shape[0], x.shape[1:]
        if n is None:
            raise ValueError("MinibatchStdDev needs a batch of known size in training")
        group = self.group_size if n % self.group_size == 0 else n
        grouped = ops.reshape(x, (n // group, group, *features))
        std = ops.sqrt(ops.var(grouped, axis=1) + self.EPSILON)  # (groups, *features)
        value = ops.mean(ops.reshape(std, (n // group, -1)), axis=1)  # (groups,)
        value = ops.reshape(ops.repeat(value, group, axis=0), (n,) + (1,) * len(features))
        return ops.concatenate([x, ops.ones_like(x[..., :1]) * value], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


def _units(config, n: int, model: str) -> int:
    """A hidden width of the recipe's, times the model's width multiplier (g_width or d_width)."""
    return max(1, round(n * getattr(config, f"{model}_width")))


class Seeds:
    """The seeds of a model's weight initializers, drawn from one number by a generator of their own.

    Left unseeded, Keras draws each initializer's seed from Python's `random` module, which every thread of the
    process shares: a model built or loaded in another thread meanwhile (the app does both) changed a new run's
    first weights, and a resumed run then differed from a straight one in every weight. These are drawn as Keras
    draws its own after `keras.utils.set_random_seed(seed)`, in the same order, so the weights are the ones the
    unseeded layers had.
    """

    def __init__(self, seed: int):
        self._random = random.Random(seed)

    def __call__(self) -> int:
        return self._random.randint(1, int(1e9))


def _seeded(seeds: Seeds, kind, *args, **kwargs):
    """A Dense or convolution layer, its kernel drawn (Glorot uniform, Keras's default) from the next seed."""
    return kind(*args, kernel_initializer=initializers.GlorotUniform(seeds()), **kwargs)


def _d_hidden(config, x, index: int):
    """What follows D's hidden layer `index` (of two): dropout when configured; after the first, the minibatch-std
    feature, so that D's second hidden layer can weigh it against the image's own features."""
    if config.d_dropout:
        x = layers.Dropout(config.d_dropout, seed=(2 * config.seed + index) % 2**31)(x)
    if config.minibatch_std and index == 0:
        x = MinibatchStdDev(config.minibatch_std, name="minibatch_std")(x)
    return x


def generator_inputs(config, z, labels=None):
    """What G is called with: z, plus the digit label (conditional) or z's own latent code."""
    if not (config.conditional or config.latent_code):
        return z
    z = ops.convert_to_tensor(z)  # Keras refuses a list mixing arrays and tensors
    if config.latent_code:
        labels = ops.argmax(z[:, :config.latent_code], axis=-1)  # uniform over the codes, by symmetry
    return [z, ops.reshape(ops.cast(labels, "int32"), (-1, 1))]


def _inputs(config, image: bool):
    """(model inputs, the image or z input, the label/code input or None)."""
    image_shape = (*IMAGE_SHAPE[:2], config.pack)  # (28, 28, 1) unless D judges packs
    main = keras.Input(image_shape, name="image") if image else keras.Input((config.latent_dim,), name="z")
    if config.conditional or (config.latent_code and not image):
        label = keras.Input((1,), dtype="int32", name="code" if config.latent_code else "label")
        return [main, label], main, label
    return main, main, None


def _with_label(config, z, label):
    """z joined with the one-hot label or code, when the generator has one."""
    if label is None:
        return z
    one_hot = layers.CategoryEncoding(config.latent_code or NUM_CLASSES, output_mode="one_hot", name="one_hot")(label)
    return layers.Concatenate()([z, one_hot])


def _sn(config, seeds: Seeds, layer, x):
    """`layer` applied to x, wrapped in spectral normalisation when config.spectral_norm (D's layers only)."""
    if not config.spectral_norm:
        return layer(x)
    wrapped = layers.SpectralNormalization(layer)
    seed = seeds()  # Keras draws the power iteration's vector's seed as the wrapper builds, after the layer's
    x = wrapped(x)
    u = wrapped.vector_u
    u.assign(initializers.TruncatedNormal(stddev=0.02, seed=seed)(u.shape, u.dtype))
    return x


def _head(config, seeds: Seeds, features, label):
    """Score from features; conditional models add a projection term <embed(y), features> (Miyato & Koyama 2018)."""
    activation = LOSSES[config.loss].activation
    if label is None and not config.latent_code:
        # the recipe's Dense(1, sigmoid)
        return _sn(config, seeds, _seeded(seeds, layers.Dense, 1, activation=activation, name="score"), features)
    score = _sn(config, seeds, _seeded(seeds, layers.Dense, 1, name="score"), features)
    if label is not None:
        embed = layers.Embedding(NUM_CLASSES, features.shape[-1], name="class_embedding",
                                 embeddings_initializer=initializers.RandomUniform(-0.05, 0.05, seeds()))
        embedded = layers.Flatten()(embed(label))
        score = layers.Add(name="projection")([score, layers.Dot(axes=1)([embedded, features])])
    if activation:
        score = layers.Activation(activation, name="activation")(score)
    if not config.latent_code:
        return score
    q = layers.LeakyReLU(negative_slope=0.2)(_seeded(seeds, layers.Dense, 128, name="code_hidden")(features))
    # a pack's m codes, side by side: (packs, m * latent_code)
    return [score, _seeded(seeds, layers.Dense, config.latent_code * config.pack, name="code_logits")(q)]


# --- classic: the Keras GAN recipe's MLP pair --------------------------------------------------------------

def classic_generator(config, seeds: Seeds | None = None) -> keras.Model:
    seeds = seeds or Seeds(config.seed)
    inputs, x, label = _inputs(config, image=False)
    x = _with_label(config, x, label)
    for units in (256, 512, 1024):
        x = _seeded(seeds, layers.Dense, _units(config, units, "g"))(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.BatchNormalization(momentum=0.8)(x)
    x = _seeded(seeds, layers.Dense, 28 * 28, activation="tanh")(x)
    return keras.Model(inputs, layers.Reshape(IMAGE_SHAPE)(x), name="generator")


def classic_discriminator(config, seeds: Seeds | None = None) -> keras.Model:
    seeds = seeds or Seeds(config.seed)
    inputs, image, label = _inputs(config, image=True)
    x = layers.Flatten()(image)
    for i, units in enumerate((512, 256)):
        x = _sn(config, seeds, _seeded(seeds, layers.Dense, _units(config, units, "d")), x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = _d_hidden(config, x, i)
    return keras.Model(inputs, _head(config, seeds, x, label), name="discriminator")


# --- dcgan: a small convolutional pair ---------------------------------------------------------------------

def dcgan_generator(config, seeds: Seeds | None = None) -> keras.Model:
    seeds = seeds or Seeds(config.seed)
    inputs, x, label = _inputs(config, image=False)
    x = _with_label(config, x, label)
    channels = _units(config, 128, "g")
    x = _seeded(seeds, layers.Dense, 7 * 7 * channels, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Reshape((7, 7, channels))(x)
    x = _seeded(seeds, layers.Conv2DTranspose, _units(config, 64, "g"), 4, strides=2, padding="same",
              use_bias=False)(x)  # 14x14
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = _seeded(seeds, layers.Conv2DTranspose, 1, 4, strides=2, padding="same", activation="tanh")(x)  # 28x28
    return keras.Model(inputs, x, name="generator")


def dcgan_discriminator(config, seeds: Seeds | None = None) -> keras.Model:
    seeds = seeds or Seeds(config.seed)
    inputs, x, label = _inputs(config, image=True)
    for i, filters in enumerate((64, 128)):
        conv = _seeded(seeds, layers.Conv2D, _units(config, filters, "d"), 4, strides=2, padding="same")
        x = _sn(config, seeds, conv, x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = _d_hidden(config, x, i)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(config, seeds, x, label), name="discriminator")


ARCHITECTURES: dict[str, Architecture] = {
    "classic": Architecture(classic_generator, classic_discriminator, jit_compile=True,
                            description="the Keras GAN recipe: MLP 100-256-512-1024-784 / 784-512-256-1"),
    "dcgan": Architecture(dcgan_generator, dcgan_discriminator, jit_compile=False,
                          description="DCGAN-style: Dense 7x7x128, ConvT 64, ConvT 1 / Conv 64, Conv 128, Dense"),
}


def build(config) -> tuple[keras.Model, keras.Model]:
    """A fresh (generator, discriminator) pair; weights initialised from config.seed, whatever other threads do."""
    arch = ARCHITECTURES[config.architecture]
    seeds = Seeds(config.seed)
    return arch.generator(config, seeds), arch.discriminator(config, seeds)
