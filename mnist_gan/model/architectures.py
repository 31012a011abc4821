"""Architectures, one registry: each entry builds a (generator, discriminator) pair from a GANConfig.

A variant plugs in by adding an entry here; the training step never branches on the architecture.
Generators map z (and a digit label when conditional, or z's latent code) to 28x28x1 images in [-1, 1].
Discriminators map an image (and label) to one score, through the output activation the loss asks for (a
probability for "bce", a raw logit for "hinge"); with a latent code they also guess the code (logits), as
InfoGAN's Q head.
Only standard Keras layers are used, so a saved generator loads in Keras safe mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers, ops

from .losses import LOSSES

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


@dataclass(frozen=True)
class Architecture:
    generator: Callable  # (config) -> keras.Model
    discriminator: Callable  # (config) -> keras.Model
    jit_compile: bool  # XLA: a large win for dense layers, a loss for convolutions on CPU (measured)
    description: str


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
    main = keras.Input(IMAGE_SHAPE, name="image") if image else keras.Input((config.latent_dim,), name="z")
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


def _sn(config, layer):
    """`layer`, wrapped in spectral normalisation when config.spectral_norm (D's layers only)."""
    return layers.SpectralNormalization(layer) if config.spectral_norm else layer


def _head(config, features, label):
    """Score from features; conditional models add a projection term <embed(y), features> (Miyato & Koyama 2018)."""
    activation = LOSSES[config.loss].activation
    if label is None and not config.latent_code:
        # the recipe's Dense(1, sigmoid)
        return _sn(config, layers.Dense(1, activation=activation, name="score"))(features)
    score = _sn(config, layers.Dense(1, name="score"))(features)
    if label is not None:
        embedded = layers.Flatten()(layers.Embedding(NUM_CLASSES, features.shape[-1], name="class_embedding")(label))
        score = layers.Add(name="projection")([score, layers.Dot(axes=1)([embedded, features])])
    if activation:
        score = layers.Activation(activation, name="activation")(score)
    if not config.latent_code:
        return score
    q = layers.LeakyReLU(negative_slope=0.2)(layers.Dense(128, name="code_hidden")(features))
    return [score, layers.Dense(config.latent_code, name="code_logits")(q)]


# --- classic: the Keras GAN recipe's MLP pair --------------------------------------------------------------

def classic_generator(config) -> keras.Model:
    inputs, x, label = _inputs(config, image=False)
    x = _with_label(config, x, label)
    for units in (256, 512, 1024):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
        x = layers.BatchNormalization(momentum=0.8)(x)
    x = layers.Dense(28 * 28, activation="tanh")(x)
    return keras.Model(inputs, layers.Reshape(IMAGE_SHAPE)(x), name="generator")


def classic_discriminator(config) -> keras.Model:
    inputs, image, label = _inputs(config, image=True)
    x = layers.Flatten()(image)
    for units in (512, 256):
        x = _sn(config, layers.Dense(units))(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
    return keras.Model(inputs, _head(config, x, label), name="discriminator")


# --- dcgan: a small convolutional pair ---------------------------------------------------------------------

def dcgan_generator(config) -> keras.Model:
    inputs, x, label = _inputs(config, image=False)
    x = _with_label(config, x, label)
    x = layers.Dense(7 * 7 * 128, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Reshape((7, 7, 128))(x)
    x = layers.Conv2DTranspose(64, 4, strides=2, padding="same", use_bias=False)(x)  # 14x14
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh")(x)  # 28x28
    return keras.Model(inputs, x, name="generator")


def dcgan_discriminator(config) -> keras.Model:
    inputs, x, label = _inputs(config, image=True)
    for filters in (64, 128):
        x = _sn(config, layers.Conv2D(filters, 4, strides=2, padding="same"))(x)
        x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(config, x, label), name="discriminator")


ARCHITECTURES: dict[str, Architecture] = {
    "classic": Architecture(classic_generator, classic_discriminator, jit_compile=True,
                            description="the Keras GAN recipe: MLP 100-256-512-1024-784 / 784-512-256-1"),
    "dcgan": Architecture(dcgan_generator, dcgan_discriminator, jit_compile=False,
                          description="DCGAN-style: Dense 7x7x128, ConvT 64, ConvT 1 / Conv 64, Conv 128, Dense"),
}


def build(config) -> tuple[keras.Model, keras.Model]:
    """A fresh (generator, discriminator) pair; weights initialised from config.seed."""
    keras.utils.set_random_seed(config.seed)
    arch = ARCHITECTURES[config.architecture]
    return arch.generator(config), arch.discriminator(config)
