"""The classic recipe written the plain Keras way: train_on_batch on D (real, then fake), then a combined model.

It is the oracle the fast step is tested against and the baseline the benchmark compares with; the product
never trains with it.
"""

from __future__ import annotations

import keras
import numpy as np

from .gan import GAN


class RecipeLoop:
    """The recipe's loop, ported to Keras 3 on the same models as `gan` (so both start from the same weights)."""

    def __init__(self, gan: GAN):
        if gan.config.conditional or gan.config.latent_code or gan.config.loss != "bce":
            raise ValueError("the recipe loop is the unconditional recipe with binary cross-entropy")
        config = gan.config
        self.generator, self.discriminator = gan.generator, gan.discriminator
        self.discriminator.compile(loss="binary_crossentropy", metrics=["accuracy"],
                                   optimizer=keras.optimizers.Adam(config.lr_d, beta_1=config.beta_1))
        z = keras.Input((config.latent_dim,))
        self.combined = keras.Model(z, self.discriminator(self.generator(z)))
        # Keras 3 collects a model's trainable weights when its train function is first traced, so the
        # Keras 2 idiom (freeze D once, compile combined) would leave D frozen in its own step too:
        # set the flag before each model's step instead.
        self.discriminator.trainable = False
        self.combined.compile(loss="binary_crossentropy",
                              optimizer=keras.optimizers.Adam(config.lr_g, beta_1=config.beta_1))

    def iteration(self, real: np.ndarray, z_fake: np.ndarray, z_gen: np.ndarray) -> dict[str, float]:
        n = len(real)
        valid, fake = np.ones((n, 1), np.float32), np.zeros((n, 1), np.float32)
        generated = self.generator.predict(z_fake, verbose=0)
        self.discriminator.trainable = True
        d_loss_real, d_acc_real = self.discriminator.train_on_batch(real, valid)
        d_loss_fake, d_acc_fake = self.discriminator.train_on_batch(generated, fake)
        self.discriminator.trainable = False
        g_loss = self.combined.train_on_batch(z_gen, valid)
        return {"d_loss_real": float(d_loss_real), "d_loss_fake": float(d_loss_fake), "g_loss": float(g_loss),
                "d_acc_real": float(d_acc_real), "d_acc_fake": float(d_acc_fake)}
