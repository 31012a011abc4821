"""The GAN: both models, their optimizers, and one compiled function for a whole D+G iteration."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from . import models
from .config import GANConfig
from .errors import CheckpointError
from .losses import loss_for

# Order of the values a training step returns (one tensor, so one host transfer per step).
METRICS = ("d_loss_real", "d_loss_fake", "g_loss", "d_acc_real", "d_acc_fake")


class GAN:
    """Owns G, D (and an EMA copy of G) with one Adam each; `iterate` performs the recipe's update, K times."""

    def __init__(self, config: GANConfig, jit_compile: bool | None = None):
        self.config = config
        self.generator, self.discriminator = models.build(config)
        self.ema_generator = None
        if config.ema_decay > 0:
            self.ema_generator = models.ARCHITECTURES[config.architecture].generator(config)
            self.ema_generator.set_weights(self.generator.get_weights())
        self.loss = loss_for(config)
        # Keras 3 refuses to share one optimizer between two models: each gets its own.
        self.d_optimizer = keras.optimizers.Adam(config.lr_d, beta_1=config.beta_1)
        self.g_optimizer = keras.optimizers.Adam(config.lr_g, beta_1=config.beta_1)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        if jit_compile is None:
            jit_compile = models.ARCHITECTURES[config.architecture].jit_compile
        self._compiled_steps = tf.function(self._train_steps, jit_compile=jit_compile)

    @property
    def sampler(self) -> keras.Model:
        """The generator to sample from: the moving average when there is one (it draws cleaner digits)."""
        return self.ema_generator or self.generator

    def _g_inputs(self, z, labels):
        return models.generator_inputs(self.config, keras.ops.convert_to_tensor(z), labels)

    def _discriminate(self, images, labels):
        """D's score, and its guess at the latent code (logits; None without a code)."""
        inputs = [keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)] if self.config.conditional else images
        out = self.discriminator(inputs, training=True)
        return (out[0], out[1]) if self.config.latent_code else (out, None)

    def _code_loss(self, code_logits, g_inputs):
        """InfoGAN's bound on the mutual information between code and image (weight 1): D's guess, cross-entropy."""
        if code_logits is None:
            return 0.0
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(g_inputs[1], code_logits, from_logits=True))

    def _accuracy(self, score, real: bool):
        said_real = keras.ops.cast(score > self.loss.threshold, "float32")
        return keras.ops.mean(said_real if real else 1.0 - said_real)

    def _update(self, optimizer, model, loss_fn):
        with tf.GradientTape() as tape:
            loss, score = loss_fn()
        variables = model.trainable_variables
        # skip what this loss does not reach (D's code head on real images), instead of a warning per trace
        pairs = [(g, v) for g, v in zip(tape.gradient(loss, variables), variables) if g is not None]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return loss, score

    def d_step(self, real, real_labels, z_fake, fake_labels):
        """D's half of the recipe: one update on a real batch (target 1), one on a generated batch (target 0)."""
        G, D, loss = self.generator, self.discriminator, self.loss
        # The recipe generates D's fakes with generator.predict: inference mode, BatchNorm uses moving statistics.
        g_inputs = self._g_inputs(z_fake, fake_labels)
        fake = G(g_inputs, training=False)

        def on_real():
            score, _ = self._discriminate(real, real_labels)
            return loss.d_real(score), score

        def on_fake():  # with a latent code, d_loss_fake includes the code's cross-entropy
            score, code_logits = self._discriminate(fake, fake_labels)
            return loss.d_fake(score) + self._code_loss(code_logits, g_inputs), score

        d_loss_real, real_score = self._update(self.d_optimizer, D, on_real)
        d_loss_fake, fake_score = self._update(self.d_optimizer, D, on_fake)
        return d_loss_real, d_loss_fake, self._accuracy(real_score, True), self._accuracy(fake_score, False)

    def g_step(self, z_gen, gen_labels):
        """G's half: learn through D towards "real". Only G's variables are updated, so D stays put."""
        G = self.generator

        def through_d():
            g_inputs = self._g_inputs(z_gen, gen_labels)
            score, code_logits = self._discriminate(G(g_inputs, training=True), gen_labels)
            return self.loss.g(score) + self._code_loss(code_logits, g_inputs), score

        g_loss, _ = self._update(self.g_optimizer, G, through_d)
        return g_loss

    def train_step(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels):
        """One iteration of the recipe (D, then G, then the EMA); returns the METRICS as one float32 vector.

        Labels are ignored by unconditional models (pass zeros); code models take their code from z.
        """
        d_loss_real, d_loss_fake, d_acc_real, d_acc_fake = self.d_step(real, real_labels, z_fake, fake_labels)
        g_loss = self.g_step(z_gen, gen_labels)
        if self.ema_generator is not None:
            # Warm-up (as in TF's ExponentialMovingAverage num_updates) so short runs are not stuck near init.
            t = keras.ops.cast(self.g_optimizer.iterations, "float32")
            decay = keras.ops.minimum(self.config.ema_decay, (1.0 + t) / (10.0 + t))
            for ema, w in zip(self.ema_generator.weights, self.generator.weights):  # BatchNorm statistics too
                ema.assign(decay * ema + (1.0 - decay) * w)
        return keras.ops.stack([d_loss_real, d_loss_fake, g_loss, d_acc_real, d_acc_fake])

    def _train_steps(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels):
        """train_step over a leading axis of K iterations, in one compiled call (Python overhead paid once)."""
        k = tf.shape(real)[0]
        out = tf.TensorArray(tf.float32, size=k)
        for i in tf.range(k):
            out = out.write(i, self.train_step(real[i], real_labels[i], z_fake[i], fake_labels[i], z_gen[i], gen_labels[i]))
        return out.stack()

    def iterate(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels) -> np.ndarray:
        """Run K iterations (every argument stacked on a leading axis of K); returns (K, len(METRICS)) metrics."""
        return self._compiled_steps(real, real_labels, z_fake, fake_labels, z_gen, gen_labels).numpy()

    def iterate_once(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels) -> dict[str, float]:
        """One iteration; returns the metrics by name."""
        arrays = (real, real_labels, z_fake, fake_labels, z_gen, gen_labels)
        values = self.iterate(*(np.asarray(a)[None] for a in arrays))[0]
        return dict(zip(METRICS, values.tolist()))

    # --- state, for checkpoints --------------------------------------------------------------------------

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every variable a resumed run needs (weights, BatchNorm statistics, optimizer moments), by position."""
        arrays = {}
        for prefix, variables in self._state_groups().items():
            for i, v in enumerate(variables):
                arrays[f"{prefix}/{i}"] = np.asarray(v)
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for prefix, variables in self._state_groups().items():
            stored = sorted((k for k in arrays if k.startswith(prefix + "/")), key=lambda k: int(k.split("/")[1]))
            if len(stored) != len(variables):
                raise CheckpointError(f"checkpoint holds {len(stored)} {prefix} variables, this model has {len(variables)}")
            for key, v in zip(stored, variables):
                if tuple(arrays[key].shape) != tuple(v.shape):
                    raise CheckpointError(f"checkpoint {key} has shape {arrays[key].shape}, this model needs {tuple(v.shape)}")
                v.assign(arrays[key])

    def _state_groups(self) -> dict[str, list]:
        groups = {
            "generator": self.generator.weights,
            "discriminator": self.discriminator.weights,
            "g_optimizer": self.g_optimizer.variables,
            "d_optimizer": self.d_optimizer.variables,
        }
        if self.ema_generator is not None:
            groups["ema_generator"] = self.ema_generator.weights
        return groups
