"""The GAN: both models, their optimizers, and one compiled function for a whole D+G iteration.

The learning rates and the EMA decay are variables, so a live edit changes them without recompiling; the number of
D updates per G update shapes the compiled function, so changing it compiles a new one (a few seconds). A D step or
a G step can also run alone, inspected: what it did to D's scores, to the images, and each layer's gradient norm.

The optional variants (config.augment, r1_gamma, spectral_norm, lr_schedule, ema_start, and issue 25's pack,
minibatch_std, d_dropout, g_width, d_width, mode_seeking) are fixed for a run and enter the trace only when set, so
their defaults leave the recipe's step exactly as it was. With packing (config.pack = m) D's losses and accuracies
are over packs of m consecutive images of a batch, all real or all generated; per-image scores (`scores`) judge each
image alone.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mnist_gan.config import GANConfig
from mnist_gan.errors import CheckpointError

from . import architectures
from .losses import loss_for, mode_seeking

# Order of the values a training step returns (one tensor, so one host transfer per step).
METRICS = ("d_loss_real", "d_loss_fake", "g_loss", "d_acc_real", "d_acc_fake")


class GAN:
    """Owns G, D (and an EMA copy of G) with one Adam each; `iterate` performs the recipe's update, K times."""

    def __init__(self, config: GANConfig, jit_compile: bool | None = None):
        self.config = config
        self.generator, self.discriminator = architectures.build(config)
        self.ema_generator = None
        if config.ema_decay > 0:
            self.ema_generator = architectures.ARCHITECTURES[config.architecture].generator(config)
            self.ema_generator.set_weights(self.generator.get_weights())
            self.ema_decay = tf.Variable(config.ema_decay, trainable=False, dtype="float32")
        self.loss = loss_for(config)
        # Keras 3 refuses to share one optimizer between two models: each gets its own.
        self.d_optimizer = keras.optimizers.Adam(config.lr_d, beta_1=config.beta_1)
        self.g_optimizer = keras.optimizers.Adam(config.lr_g, beta_1=config.beta_1)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.base_rates = None
        if config.lr_schedule != "constant":
            # the rates the schedule decays from: variables, so a live edit of lr_d / lr_g moves the whole schedule
            self.base_rates = tf.Variable([config.lr_d, config.lr_g], trainable=False, dtype="float32")
        if jit_compile is None:
            jit_compile = architectures.ARCHITECTURES[config.architecture].jit_compile
        self.jit_compile = jit_compile
        self._compiled_steps = tf.function(self._train_steps, jit_compile=jit_compile)

    def set_live(self, config: GANConfig) -> None:
        """Take a running config's live settings (learning rates, EMA decay, D updates per G update)."""
        if config.signature != self.config.signature or (config.ema_decay > 0) != (self.config.ema_decay > 0):
            raise ValueError("only the live settings of a run can change while it trains")
        self.d_optimizer.learning_rate.assign(config.lr_d)
        self.g_optimizer.learning_rate.assign(config.lr_g)
        if self.base_rates is not None:  # the next step scales these by the schedule
            self.base_rates.assign([config.lr_d, config.lr_g])
        if self.ema_generator is not None:
            self.ema_decay.assign(config.ema_decay)
        recompile = config.d_steps != self.config.d_steps
        self.config = config
        if recompile:  # the D loop is unrolled in the trace
            self._compiled_steps = tf.function(self._train_steps, jit_compile=self.jit_compile)

    @property
    def sampler(self) -> keras.Model:
        """The generator to sample from: the moving average when there is one (it draws cleaner digits)."""
        return self.ema_generator or self.generator

    def _g_inputs(self, z, labels):
        return architectures.generator_inputs(self.config, keras.ops.convert_to_tensor(z), labels)

    def _discriminate(self, images, labels, training: bool = True, alone: bool = False):
        """D's score, and its guess at the latent code (logits, one row per image; None without a code). With
        packing the scores are one per pack of consecutive images, or with `alone` one per image, each judged in a
        pack of copies of itself."""
        m = self.config.pack
        if m > 1:
            images = (architectures.copies if alone else architectures.pack)(keras.ops.convert_to_tensor(images), m)
        inputs = [keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)] if self.config.conditional else images
        out = self.discriminator(inputs, training=training)
        if not self.config.latent_code:
            return out, None
        score, code_logits = out
        if m > 1:  # (packs, m * codes): the guesses for a pack's images, in order
            code_logits = code_logits[:, :self.config.latent_code] if alone else \
                keras.ops.reshape(code_logits, (-1, self.config.latent_code))
        return score, code_logits

    def _augment(self, images, stream: int):
        """DiffAugment when configured (else the images unchanged); `stream` keeps each call's draws apart."""
        if not self.config.augment:
            return images
        from .augment import diff_augment

        # stateless, keyed by (config seed, training step, stream): a resumed run draws what an unbroken one would
        step = tf.cast(self.g_optimizer.iterations, tf.int32)
        seed = tf.stack([step, tf.constant(stream, tf.int32) + 64 * tf.constant(self.config.seed % 2**24, tf.int32)])
        return diff_augment(keras.ops.convert_to_tensor(images), self.config.augment, seed)

    def _r1(self, images, labels):
        """D's score on `images`, its code logits, and the R1 penalty (gamma / 2) E|grad_x D(x)|^2 (Mescheder et
        al. 2018)."""
        images = keras.ops.convert_to_tensor(images)
        with tf.GradientTape() as tape:
            tape.watch(images)
            score, code_logits = self._discriminate(images, labels)
            total = tf.reduce_sum(score)  # each score depends on its own image only: one gradient gives them all
        gradients = tape.gradient(total, images)
        if self.config.pack > 1:  # a pack's score depends on its m images: the gradient over all of them, per pack
            gradients = tf.reshape(gradients, (-1, self.config.pack, *architectures.IMAGE_SHAPE))
        penalty = 0.5 * self.config.r1_gamma * tf.reduce_mean(
            tf.reduce_sum(tf.square(gradients), axis=list(range(1, len(gradients.shape)))))
        return score, code_logits, penalty

    def _schedule(self) -> None:
        """Set both learning rates for this step (lr_schedule "linear"/"cosine": decay to 0 at config.steps)."""
        if self.base_rates is None:
            return
        c = self.config
        t = tf.cast(self.g_optimizer.iterations, tf.float32)
        begin = c.lr_decay_start * c.steps
        progress = tf.clip_by_value((t - begin) / max(c.steps - begin, 1.0), 0.0, 1.0)
        factor = 1.0 - progress if c.lr_schedule == "linear" else 0.5 * (1.0 + tf.cos(np.pi * progress))
        self.d_optimizer.learning_rate.assign(self.base_rates[0] * factor)
        self.g_optimizer.learning_rate.assign(self.base_rates[1] * factor)

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

    def _d_losses(self, real, real_labels, z_fake, fake_labels, update: int = 0):
        """(the generated batch, D's loss on the real batch, D's loss on the generated one), the losses as
        functions returning (loss, score) for _update; `update` numbers D's updates within an iteration (it keeps
        their augmentations apart)."""
        G, loss = self.generator, self.loss
        # The recipe generates D's fakes with generator.predict: inference mode, BatchNorm uses moving statistics.
        g_inputs = self._g_inputs(z_fake, fake_labels)
        fake = G(g_inputs, training=False)

        def on_real():
            images = self._augment(real, 3 * update)  # stream 2 is G's (see _g_loss)
            if self.config.r1_gamma:
                score, _, penalty = self._r1(images, real_labels)
                return loss.d_real(score) + penalty, score
            score, _ = self._discriminate(images, real_labels)
            return loss.d_real(score), score

        def on_fake():  # with a latent code, d_loss_fake includes the code's cross-entropy
            score, code_logits = self._discriminate(self._augment(fake, 3 * update + 1), fake_labels)
            return loss.d_fake(score) + self._code_loss(code_logits, g_inputs), score

        return fake, on_real, on_fake

    def _g_loss(self, z_gen, gen_labels):
        """G's loss through D (towards "real"), as a function returning (loss, score) for _update."""
        def through_d():
            g_inputs = self._g_inputs(z_gen, gen_labels)
            fakes = self.generator(g_inputs, training=True)
            score, code_logits = self._discriminate(self._augment(fakes, 2), gen_labels)
            loss = self.loss.g(score) + self._code_loss(code_logits, g_inputs)
            if self.config.mode_seeking:  # the latents' distance: z's, without the latent code's index
                z = g_inputs[0] if isinstance(g_inputs, (list, tuple)) else g_inputs
                loss = loss + self.config.mode_seeking * mode_seeking(fakes, z)
            return loss, score

        return through_d

    def d_step(self, real, real_labels, z_fake, fake_labels, update: int = 0):
        """D's half of the recipe: one update on a real batch (target 1), one on a generated batch (target 0)."""
        _, on_real, on_fake = self._d_losses(real, real_labels, z_fake, fake_labels, update)
        d_loss_real, real_score = self._update(self.d_optimizer, self.discriminator, on_real)
        d_loss_fake, fake_score = self._update(self.d_optimizer, self.discriminator, on_fake)
        return d_loss_real, d_loss_fake, self._accuracy(real_score, True), self._accuracy(fake_score, False)

    def g_step(self, z_gen, gen_labels):
        """G's half: learn through D towards "real". Only G's variables are updated, so D stays put."""
        g_loss, _ = self._update(self.g_optimizer, self.generator, self._g_loss(z_gen, gen_labels))
        return g_loss

    def train_step(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels):
        """One iteration of the recipe: config.d_steps D updates (each on its own real batch and noise: real,
        real_labels, z_fake and fake_labels carry a leading axis of d_steps), then G, then the EMA; returns the
        METRICS (D's averaged over its updates) as one float32 vector.

        Labels are ignored by unconditional models (pass zeros); code models take their code from z.
        """
        d = self.config.d_steps
        self._schedule()
        d_metrics = [self.d_step(real[j], real_labels[j], z_fake[j], fake_labels[j], j) for j in range(d)]
        d_loss_real, d_loss_fake, d_acc_real, d_acc_fake = (sum(m[i] for m in d_metrics) / d for i in range(4))
        g_loss = self.g_step(z_gen, gen_labels)
        self._ema_update()
        return keras.ops.stack([d_loss_real, d_loss_fake, g_loss, d_acc_real, d_acc_fake])

    def _ema_update(self) -> None:
        if self.ema_generator is None:
            return
        # Warm-up (as in TF's ExponentialMovingAverage num_updates) so short runs are not stuck near init.
        t = keras.ops.cast(self.g_optimizer.iterations, "float32")
        if self.config.ema_start:
            # the average is G itself (decay 0) up to ema_start, then warms up from there: early G is no digit worth
            # averaging in
            t = t - self.config.ema_start
            warm = keras.ops.maximum(t, 0.0)
            decay = keras.ops.where(t <= 0, 0.0, keras.ops.minimum(self.ema_decay, (1.0 + warm) / (10.0 + warm)))
        else:
            decay = keras.ops.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        for ema, w in zip(self.ema_generator.weights, self.generator.weights):  # BatchNorm statistics too
            ema.assign(decay * ema + (1.0 - decay) * w)

    def _train_steps(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels):
        """train_step over a leading axis of K iterations, in one compiled call (Python overhead paid once)."""
        k = tf.shape(real)[0]
        out = tf.TensorArray(tf.float32, size=k)
        for i in tf.range(k):
            out = out.write(i, self.train_step(real[i], real_labels[i], z_fake[i], fake_labels[i], z_gen[i], gen_labels[i]))
        return out.stack()

    def iterate(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels) -> np.ndarray:
        """Run K iterations (every argument stacked on a leading axis of K, then d_steps for D's four); returns
        (K, len(METRICS)) metrics."""
        return self._compiled_steps(real, real_labels, z_fake, fake_labels, z_gen, gen_labels).numpy()

    def iterate_once(self, real, real_labels, z_fake, fake_labels, z_gen, gen_labels) -> dict[str, float]:
        """One iteration; returns the metrics by name."""
        d_axis = (real, real_labels, z_fake, fake_labels)
        values = self.iterate(*(np.asarray(a)[None, None] for a in d_axis),
                              *(np.asarray(a)[None] for a in (z_gen, gen_labels)))[0]
        return dict(zip(METRICS, values.tolist()))

    # --- one step at a time, looked at (eager: what each update did, on the very batch it used) ------------------

    def scores(self, images, labels) -> np.ndarray:
        """D's output (its raw score: a probability for bce, a logit for hinge) for each image, judged alone."""
        # inference mode: a look must not move D (spectral normalisation updates its weights in training mode)
        return np.asarray(self._discriminate(images, labels, training=False, alone=True)[0], np.float64).ravel()

    def gradient_norms(self, loss_fn, model) -> dict[str, float]:
        """The norm of loss_fn()'s gradient over each layer's variables, by layer (what an update would move)."""
        with tf.GradientTape() as tape:
            loss, _ = loss_fn()
        squares: dict[str, float] = {}
        for gradient, variable in zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables):
            if gradient is not None:
                layer = variable.path.split("/")[0]
                squares[layer] = squares.get(layer, 0.0) + float(tf.reduce_sum(tf.square(gradient)))
        return {layer: value ** 0.5 for layer, value in squares.items()}

    def inspect_d_step(self, real, real_labels, z_fake, fake_labels) -> dict:
        """One D step of the recipe on this batch, looked at: the batch's real and generated images, D's scores of
        both before and after the update, the losses' parts and D's gradient norms (taken before it)."""
        self._schedule()
        fake, on_real, on_fake = self._d_losses(real, real_labels, z_fake, fake_labels)
        before = self.scores(real, real_labels), self.scores(fake, fake_labels)
        norms = self.gradient_norms(lambda: (on_real()[0] + on_fake()[0], None), self.discriminator)
        d_loss_real, _ = self._update(self.d_optimizer, self.discriminator, on_real)
        d_loss_fake, _ = self._update(self.d_optimizer, self.discriminator, on_fake)
        after = self.scores(real, real_labels), self.scores(fake, fake_labels)
        return {"real": np.asarray(real), "fake": np.asarray(fake), "real_before": before[0],
                "fake_before": before[1], "real_after": after[0], "fake_after": after[1],
                "d_loss_real": float(d_loss_real), "d_loss_fake": float(d_loss_fake), "d_norms": norms}

    def inspect_g_step(self, z_gen, gen_labels) -> dict:
        """One G step on this noise, looked at: its images (G in inference mode) and D's scores of them before and
        after the update, and G's gradient norms (taken before it). The EMA follows, as in training."""
        self._schedule()
        g_inputs = self._g_inputs(z_gen, gen_labels)
        before = np.asarray(self.generator(g_inputs, training=False))
        scores_before = self.scores(before, gen_labels)
        norms = self.gradient_norms(self._g_loss(z_gen, gen_labels), self.generator)
        g_loss, _ = self._update(self.g_optimizer, self.generator, self._g_loss(z_gen, gen_labels))
        self._ema_update()
        after = np.asarray(self.generator(g_inputs, training=False))
        return {"before": before, "after": after, "scores_before": scores_before,
                "scores_after": self.scores(after, gen_labels), "g_loss": float(g_loss), "g_norms": norms}

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
        if self.config.d_dropout:  # where D's dropout masks are in their random stream: a resume draws on from there
            groups["discriminator_seeds"] = [v for v in self.discriminator.variables if "seed_generator" in v.path]
        return groups
