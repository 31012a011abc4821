"""The optional training variants (augmentation, R1, spectral norm, LR schedules, EMA start, snapshots): each against
an independent computation, each trains, a run using them all resumes exactly, and they live with the laboratory's
live edits."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_gan.config import ConfigError, GANConfig
from mnist_gan.errors import CheckpointError
from mnist_gan.model import augment
from mnist_gan.model.gan import GAN, METRICS
from mnist_gan.model.generator import Generator, load_discriminator
from mnist_gan.training.events import Step
from mnist_gan.training.trainer import SNAPSHOTS_DIR, Trainer
from testing.runs import straight_and_resumed

SMALL = GANConfig(batch_size=16, steps=20, sample_every=10, checkpoint_every=10, latent_code=10, loss="hinge",
                  ema_decay=0.999)


def test_defaults_are_off():
    c = GANConfig()
    assert (c.augment, c.r1_gamma, c.spectral_norm, c.lr_schedule, c.lr_decay_start, c.ema_start,
            c.snapshot_every) == ("", 0.0, False, "constant", 0.0, 0, 0)


@pytest.mark.parametrize("field, value", [("augment", "flip"), ("augment", "translation,zoom"), ("r1_gamma", -1.0),
                                          ("lr_schedule", "step"), ("lr_decay_start", 1.0), ("ema_start", -1),
                                          ("snapshot_every", -5)])
def test_invalid_variant_values_name_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        GANConfig(**{field: value})
    assert info.value.field == field


# --- DiffAugment ---------------------------------------------------------------------------------------------


def test_translation_is_a_shift_with_background_fill():
    x = np.random.default_rng(0).uniform(-1, 1, (40, 28, 28, 1)).astype(np.float32)
    seed = tf.constant([3, 4], tf.int32)
    got = augment.translation(tf.constant(x), seed).numpy()
    shifts = tf.random.stateless_uniform((2, 40), seed, -4, 5, dtype=tf.int32).numpy()  # the same draw
    assert shifts.min() == -4 and shifts.max() == 4
    for i, (dy, dx) in enumerate(shifts.T):
        want = np.full((28, 28), -1.0, np.float32)
        rows, cols = slice(max(dy, 0), 28 + min(dy, 0)), slice(max(dx, 0), 28 + min(dx, 0))
        want[rows, cols] = x[i, max(-dy, 0):28 - max(dy, 0), max(-dx, 0):28 - max(dx, 0), 0]
        np.testing.assert_allclose(got[i, ..., 0], want, atol=1e-6)
    # deterministic in the seed, different for another
    np.testing.assert_array_equal(augment.translation(tf.constant(x), seed).numpy(), got)
    assert not np.array_equal(augment.translation(tf.constant(x), tf.constant([3, 5])).numpy(), got)


def test_cutout_zeroes_one_square_of_half_the_side():
    x = np.ones((200, 28, 28, 1), np.float32)
    got = augment.cutout(tf.constant(x), tf.constant([1, 2], tf.int32)).numpy()[..., 0]
    for image in got:
        rows, cols = np.nonzero(image == 0)
        # one axis-aligned rectangle: a 14 x 14 square, cut by the border when its centre is near the edge
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert rows.max() - rows.min() + 1 <= 14 and cols.max() - cols.min() + 1 <= 14
        assert set(np.unique(image)) <= {0.0, 1.0}
    sides = [np.ptp(np.nonzero(image == 0)[0]) + 1 for image in got]
    assert max(sides) == 14 and min(sides) >= 7  # whole squares, and squares cut by the border


def test_augmentation_is_differentiable():
    x = tf.Variable(np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(augment.diff_augment(x, "translation,cutout", tf.constant([0, 0])) ** 2)
    gradient = tape.gradient(total, x).numpy()
    assert np.isfinite(gradient).all() and np.count_nonzero(gradient) > 0.3 * gradient.size


# --- R1 ------------------------------------------------------------------------------------------------------


def test_r1_penalty_matches_finite_differences(tiny_data):
    gan = GAN(GANConfig(loss="hinge", r1_gamma=4.0), jit_compile=False)
    x = tiny_data.x_train[:1].astype(np.float64)
    _, _, penalty = gan._r1(tf.constant(x, tf.float32), None)
    # central differences of D's score along each of the 784 pixels, in one batch of 2 x 784 images
    h = 1e-2
    eye = np.eye(784).reshape(784, 28, 28, 1) * h
    batch = np.concatenate([x + eye, x - eye]).astype(np.float32)
    scores = np.asarray(gan.discriminator(batch, training=True)).ravel()
    gradient = (scores[:784] - scores[784:]) / (2 * h)
    assert float(penalty) == pytest.approx(0.5 * 4.0 * np.sum(gradient ** 2), rel=1e-2)


# --- schedules, EMA start, spectral norm ---------------------------------------------------------------------


def _factor(kind: str, progress: float) -> float:
    return 1 - progress if kind == "linear" else 0.5 * (1 + np.cos(np.pi * progress))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_learning_rates_decay_to_zero_at_the_last_step(tiny_data, kind):
    config = SMALL.replace(steps=40, lr_schedule=kind, lr_decay_start=0.5)
    trainer = Trainer(config, tiny_data)
    trainer.config = config.replace(steps=30)  # stop after 30 of the 40 steps the schedule was built for
    trainer.run()
    # the 30th step set the rates from the 29 steps done before it: 9 of the 20 decaying steps
    factor = _factor(kind, 9 / 20)
    assert float(trainer.gan.g_optimizer.learning_rate) == pytest.approx(config.lr_g * factor, rel=1e-5)
    assert float(trainer.gan.d_optimizer.learning_rate) == pytest.approx(config.lr_d * factor, rel=1e-5)


@pytest.mark.slow
def test_a_live_edit_of_a_rate_moves_the_whole_schedule(tiny_data):
    config = SMALL.replace(steps=40, lr_schedule="linear")
    trainer = Trainer(config, tiny_data)

    def watch(event):
        if isinstance(event, Step) and event.step == 10:
            trainer.edit({"lr_d": 1e-4})
        if isinstance(event, Step) and event.step >= 30:
            trainer.stop()

    trainer.subscribe(watch)
    trainer.run()
    # the 30th step: 29 of 40 steps done, from the edited base rate for D and the config's for G
    assert float(trainer.gan.d_optimizer.learning_rate) == pytest.approx(1e-4 * _factor("linear", 29 / 40), rel=1e-5)
    assert float(trainer.gan.g_optimizer.learning_rate) == pytest.approx(config.lr_g * _factor("linear", 29 / 40),
                                                                         rel=1e-5)


@pytest.mark.slow
def test_the_ema_copies_g_until_ema_start(tiny_data):
    trainer = Trainer(SMALL.replace(ema_start=10), tiny_data)
    trainer.config = trainer.config.replace(steps=10)
    trainer.run()
    for ema, w in zip(trainer.gan.ema_generator.weights, trainer.gan.generator.weights):
        np.testing.assert_array_equal(np.asarray(ema), np.asarray(w))
    trainer.config = trainer.config.replace(steps=20)
    trainer.run()
    assert any(not np.array_equal(np.asarray(e), np.asarray(w))
               for e, w in zip(trainer.gan.ema_generator.weights, trainer.gan.generator.weights))


@pytest.mark.slow
def test_spectral_norm_keeps_ds_layers_near_norm_one_and_a_look_leaves_d_alone(tiny_data):
    trainer = Trainer(SMALL.replace(spectral_norm=True), tiny_data)
    trainer.run()
    kernels = [w for w in trainer.gan.discriminator.weights if w.path.endswith("kernel") and "code" not in w.path]
    assert len(kernels) == 3  # 784-512, 512-256, 256-1
    for kernel in kernels:
        assert np.linalg.norm(np.asarray(kernel), 2) < 1.1, kernel.path
    # D's scores for the atlas and steps by hand run D in inference mode: its power iteration stays put
    before = [np.array(w) for w in trainer.gan.discriminator.weights]
    trainer.gan.scores(tiny_data.x_train[:8], None)
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, trainer.gan.discriminator.weights))


# --- every variant trains (compiled with XLA, as the CLI runs), keeps snapshots, and resumes exactly ----------


@pytest.mark.slow
@pytest.mark.parametrize("variant", [dict(augment="translation,cutout"), dict(r1_gamma=1.0), dict(spectral_norm=True),
                                     dict(lr_schedule="linear"), dict(ema_start=5),
                                     dict(augment="translation", r1_gamma=1.0, d_steps=2)],
                         ids=lambda v: ",".join(f"{k}={v}" for k, v in v.items()))
def test_each_variant_trains(tiny_data, variant):
    trainer = Trainer(SMALL.replace(**variant), tiny_data)
    assert trainer.run() == "finished"
    assert all(np.isfinite(trainer.history[-1][k]) for k in METRICS)


def test_snapshots_are_weights_folders(tiny_data, tmp_path):
    trainer = Trainer(SMALL.replace(snapshot_every=10), tiny_data, tmp_path)
    trainer.run()
    snapshots = sorted(p.name for p in (tmp_path / SNAPSHOTS_DIR).iterdir())
    assert snapshots == ["0000010", "0000020"]
    images = Generator.load(tmp_path / SNAPSHOTS_DIR / "0000020").generate(0, 4)
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8
    # with its discriminator, so that a chosen snapshot ships with everything the Inside tab needs
    assert load_discriminator(tmp_path / SNAPSHOTS_DIR / "0000020") is not None


@pytest.mark.slow
def test_a_run_with_every_variant_resumes_exactly(tiny_data, tmp_path):
    config = SMALL.replace(steps=40, augment="translation,cutout", r1_gamma=0.5, lr_schedule="cosine",
                           lr_decay_start=0.25, d_steps=2, ema_start=5, spectral_norm=True)
    a, b = straight_and_resumed(config, tiny_data, tmp_path)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # spectral normalisation adds variables to D: a resume cannot switch it
    with pytest.raises(CheckpointError, match="spectral normalisation"):
        Trainer.resume_from(tmp_path / "split", tiny_data, changes={"spectral_norm": False})
