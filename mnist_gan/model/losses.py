"""Adversarial losses: the one hook each training variant fills, instead of flags inside the training step.

A loss owns everything loss-specific: D's output activation (the architectures ask for it, never for a loss by
name), the score above which D says "real", and the three terms of the training step.
"""

from __future__ import annotations

import keras
from keras import ops


class BCE:
    """The recipe: binary cross-entropy on D's probability; G is trained towards label 1 (non-saturating)."""

    activation = "sigmoid"  # D outputs a probability, as the recipe's Dense(1, sigmoid)
    threshold = 0.5  # D says "real" above this

    def __init__(self, label_smoothing: float = 0.0):
        self.real_target = 1.0 - label_smoothing

    def d_real(self, score):
        return ops.mean(keras.losses.binary_crossentropy(ops.full_like(score, self.real_target), score))

    def d_fake(self, score):
        return ops.mean(keras.losses.binary_crossentropy(ops.zeros_like(score), score))

    def g(self, score):
        return ops.mean(keras.losses.binary_crossentropy(ops.ones_like(score), score))


class Hinge:
    """Hinge loss on D's raw logit (as in SN-GAN / BigGAN)."""

    activation = None  # D outputs its raw logit
    threshold = 0.0

    def __init__(self, label_smoothing: float = 0.0):
        self.margin = 1.0 - label_smoothing

    def d_real(self, score):
        return ops.mean(ops.relu(self.margin - score))

    def d_fake(self, score):
        return ops.mean(ops.relu(1.0 + score))

    def g(self, score):
        return -ops.mean(score)


LOSSES = {"bce": BCE, "hinge": Hinge}


MODE_SEEKING_EPS = 1e-5  # as MSGAN's code


def mode_seeking(images, z):
    """MSGAN's term (Mao et al. 2019), for G to minimise: the batch's first and second halves paired, 1 / (mean
    |G(z1) - G(z2)| / mean |z1 - z2|). Large when different latents draw nearly the same image, which is how a
    generator drops the ways of writing a digit it does not draw."""
    half = ops.shape(images)[0] // 2
    apart = ops.mean(ops.abs(images[:half] - images[half:2 * half])) / ops.mean(ops.abs(z[:half] - z[half:2 * half]))
    return 1.0 / (apart + MODE_SEEKING_EPS)


def loss_for(config) -> BCE | Hinge:
    """The loss hook a config names."""
    return LOSSES[config.loss](config.label_smoothing)
