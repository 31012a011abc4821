"""The fast step against the recipe written the plain Keras way, and the freezing of each model."""

import numpy as np
import pytest

from mnist_gan.config import GANConfig
from mnist_gan.model.gan import GAN, METRICS
from mnist_gan.model.recipe_loop import RecipeLoop


def _batches(tiny_data, n_steps, batch=32, latent_dim=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n_steps):
        idx = rng.integers(0, len(tiny_data.x_train), batch)
        yield (tiny_data.x_train[idx], rng.standard_normal((batch, latent_dim)).astype(np.float32),
               rng.standard_normal((batch, latent_dim)).astype(np.float32))


def _run_both(tiny_data, jit_compile, n_steps=3):
    config = GANConfig()
    fast, plain = GAN(config, jit_compile=jit_compile), GAN(config)
    for a, b in zip(fast.generator.weights + fast.discriminator.weights, plain.generator.weights + plain.discriminator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # same initial weights from the same seed
    recipe = RecipeLoop(plain)
    zeros = np.zeros((32, 1), np.int32)
    for real, z_fake, z_gen in _batches(tiny_data, n_steps):
        got = fast.iterate_once(real, zeros, z_fake, zeros, z_gen, zeros)
        want = recipe.iteration(real, z_fake, z_gen)
        for name in METRICS:
            assert got[name] == pytest.approx(want[name], abs=1e-4), name
    return fast, plain


def _max_difference(model_a, model_b):
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(model_a.weights, model_b.weights))


def test_compiled_step_matches_the_train_on_batch_recipe_exactly(tiny_data):
    fast, plain = _run_both(tiny_data, jit_compile=False)
    assert _max_difference(fast.discriminator, plain.discriminator) < 1e-6
    assert _max_difference(fast.generator, plain.generator) < 1e-6  # BatchNorm moving statistics included
    # and the models did learn: the weights moved away from their initial values
    assert _max_difference(fast.generator, GAN(GANConfig()).generator) > 1e-4


def test_xla_step_matches_within_adams_rounding(tiny_data):
    # XLA reorders float sums; Adam's first steps divide a gradient by its own magnitude, so a weight whose
    # gradient is ~0 can step by +lr in one and -lr in the other. Bound: 2 * lr per step, and rare.
    n = 3
    fast, plain = _run_both(tiny_data, jit_compile=True, n_steps=n)
    lr = GANConfig().lr_g
    assert _max_difference(fast.discriminator, plain.discriminator) <= 2 * lr * n
    assert _max_difference(fast.generator, plain.generator) <= 2 * lr * n
    diffs = np.concatenate([np.abs(np.asarray(a) - np.asarray(b)).ravel()
                            for a, b in zip(fast.generator.weights, plain.generator.weights)])
    assert np.mean(diffs > 1e-5) < 0.01


def _snapshot(model):
    return [np.asarray(w).copy() for w in model.weights]


def _unchanged(model, snapshot):
    return all(np.array_equal(np.asarray(w), s) for w, s in zip(model.weights, snapshot))


@pytest.mark.parametrize("config", [GANConfig(), GANConfig(architecture="dcgan", conditional=True, loss="hinge"),
                                    GANConfig(latent_code=10, loss="hinge")],
                         ids=["classic", "dcgan-conditional-hinge", "classic-latent-code"])
def test_d_learns_in_its_step_and_stays_put_in_gs(tiny_data, config):
    gan = GAN(config, jit_compile=False)
    real, z_fake, z_gen = next(_batches(tiny_data, 1))
    labels = tiny_data.y_train[:32, None]

    g_before, d_before = _snapshot(gan.generator), _snapshot(gan.discriminator)
    gan.d_step(real, labels, z_fake, labels)
    assert not _unchanged(gan.discriminator, d_before), "D did not learn in its own step"
    assert _unchanged(gan.generator, g_before), "the D step changed G (weights or BatchNorm statistics)"

    g_before, d_before = _snapshot(gan.generator), _snapshot(gan.discriminator)
    gan.g_step(z_gen, labels)
    assert not _unchanged(gan.generator, g_before), "G did not learn in its own step"
    assert _unchanged(gan.discriminator, d_before), "the G step changed D"


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["classic", "dcgan"])
@pytest.mark.parametrize("conditional", [False, True])
def test_every_variant_trains_and_shapes_fit(tiny_data, architecture, conditional):
    config = GANConfig(architecture=architecture, conditional=conditional, ema_decay=0.99, batch_size=16)
    gan = GAN(config)
    k, b = 2, 16
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, (k, b, 1)).astype(np.int32)
    z = rng.standard_normal((k, b, 100)).astype(np.float32)
    d = lambda a: a[:, None]  # noqa: E731  (D's inputs carry an axis of d_steps)
    values = gan.iterate(d(tiny_data.x_train[:k * b].reshape(k, b, 28, 28, 1)), d(labels), d(z), d(labels), z, labels)
    assert values.shape == (k, len(METRICS)) and np.all(np.isfinite(values))
    inputs = [z[0], labels[0]] if conditional else z[0]
    out = np.asarray(gan.sampler(inputs, training=False))
    assert out.shape == (b, 28, 28, 1) and out.min() >= -1 and out.max() <= 1
    assert not _unchanged(gan.ema_generator, _snapshot(GAN(config).generator))  # the EMA copy follows G


@pytest.mark.slow
def test_the_latent_code_is_learned_without_labels(tiny_data):
    """InfoGAN: G sees the argmax of z's first entries as a one-hot, and D's code head learns to read it back from
    G's images. No real label reaches either model: the data's labels are scrambled and nothing changes."""
    config = GANConfig(latent_code=10, loss="hinge", batch_size=32)
    rng = np.random.default_rng(0)
    k, b = 10, 32
    z = rng.standard_normal((30, k, b, 100)).astype(np.float32)
    real = tiny_data.x_train[rng.integers(0, len(tiny_data.x_train), (k, b))]
    junk = rng.integers(0, 10, (k, b, 1)).astype(np.int32)

    def code_accuracy(gan, z, codes):
        from mnist_gan.model.architectures import generator_inputs
        _, logits = gan.discriminator(gan.generator(generator_inputs(config, z), training=False), training=False)
        return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == codes))

    gan, twin = GAN(config), GAN(config)
    for i in range(len(z)):
        gan.iterate(real[:, None], junk[:, None], z[i][:, None], junk[:, None], z[i], junk)
        twin.iterate(real[:, None], np.zeros_like(junk)[:, None], z[i][:, None], np.ones_like(junk)[:, None], z[i],
                     2 * np.ones_like(junk))
    test_z = rng.standard_normal((500, 100)).astype(np.float32)
    test_codes = np.argmax(test_z[:, :10], axis=-1)
    assert code_accuracy(GAN(config), test_z, test_codes) < 0.3  # chance at the start
    assert code_accuracy(gan, test_z, test_codes) > 0.6  # read back after 300 steps (0.89 measured)
    for a, b in zip(gan.generator.weights, twin.generator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # labels passed in are never used
