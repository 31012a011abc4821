"""Issue 25's mode-coverage options: PacGAN packing, minibatch standard deviation, dropout in D, wider (or
narrower) models and MSGAN's mode-seeking term. What each does to D's inputs, outputs and gradients (or G's loss),
against an independent computation; each trains, saves, loads, travels through the Hub and resumes exactly; and a
packing D still judges one image alone (the atlas and the Inside tab)."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_gan.cli import _config_from, build_parser
from mnist_gan.config import ConfigError, GANConfig
from mnist_gan.errors import CheckpointError, WeightsError
from mnist_gan.hub import push_pull
from mnist_gan.inside.critic import Critic
from mnist_gan.model import architectures
from mnist_gan.model.architectures import MinibatchStdDev
from mnist_gan.model.gan import GAN, METRICS
from mnist_gan.model.generator import Generator, load_discriminator, save_models
from mnist_gan.model.losses import MODE_SEEKING_EPS, mode_seeking
from mnist_gan.training.trainer import Trainer
from testing.hub_server import local_hub
from testing.runs import straight_and_resumed

SMALL = GANConfig(batch_size=16, steps=20, sample_every=10, checkpoint_every=10, latent_code=10, loss="hinge",
                  ema_decay=0.999)
# every option at once: 8 packs of 2, in groups of 4
EVERY = {"pack": 2, "minibatch_std": 4, "d_dropout": 0.3, "g_width": 1.25, "d_width": 0.75, "mode_seeking": 1.0}
TOKEN = "hf_aliceWrite4Jq8sT2vX9mN0pL6zQ"


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32)


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_defaults_are_off_and_build_the_recipes_models():
    c = GANConfig()
    assert (c.pack, c.minibatch_std, c.d_dropout, c.g_width, c.d_width, c.mode_seeking) == (1, 0, 0.0, 1.0, 1.0, 0.0)
    generator, discriminator = architectures.build(c)
    assert discriminator.input_shape == (None, 28, 28, 1)
    assert _layer_types(discriminator) == ["InputLayer", "Flatten", "Dense", "LeakyReLU", "Dense", "LeakyReLU",
                                           "Dense"]
    assert [layer.units for layer in generator.layers if type(layer).__name__ == "Dense"] == [256, 512, 1024, 784]


@pytest.mark.parametrize("changes, field", [
    ({"pack": 0}, "pack"), ({"pack": 17}, "pack"), ({"batch_size": 64, "pack": 3}, "pack"),
    ({"pack": 2, "conditional": True}, "pack"), ({"minibatch_std": 1}, "minibatch_std"),
    ({"batch_size": 64, "pack": 2, "minibatch_std": 5}, "minibatch_std"), ({"minibatch_std": -2}, "minibatch_std"),
    ({"d_dropout": 0.95}, "d_dropout"), ({"d_dropout": -0.1}, "d_dropout"), ({"g_width": 0.0}, "g_width"),
    ({"d_width": 9.0}, "d_width"), ({"g_width": float("nan")}, "g_width"), ({"mode_seeking": -1.0}, "mode_seeking"),
    ({"mode_seeking": float("inf")}, "mode_seeking"), ({"mode_seeking": 1.0, "conditional": True}, "mode_seeking")])
def test_invalid_values_name_the_field(changes, field):
    with pytest.raises(ConfigError) as info:
        GANConfig(**changes)
    assert info.value.field == field


def test_the_cli_has_a_flag_for_each_option():
    args = build_parser().parse_args(["train", "--latent-code", "10", "--batch-size", "64", "--pack", "2",
                                      "--minibatch-std", "4", "--d-dropout", "0.2", "--g-width", "1.5",
                                      "--d-width", "2", "--mode-seeking", "0.5"])
    c = _config_from(args)
    assert (c.pack, c.minibatch_std, c.d_dropout, c.g_width, c.d_width, c.mode_seeking) == (2, 4, 0.2, 1.5, 2.0, 0.5)


# --- PacGAN packing ------------------------------------------------------------------------------------------


def test_pack_stacks_consecutive_images_as_channels_and_copies_repeat_one():
    x = _images(8)
    packed = np.asarray(architectures.pack(tf.constant(x), 4))
    assert packed.shape == (2, 28, 28, 4)
    for i in range(2):
        for j in range(4):
            np.testing.assert_array_equal(packed[i, ..., j], x[4 * i + j, ..., 0])
    tiled = np.asarray(architectures.copies(tf.constant(x[:3]), 4))
    assert tiled.shape == (3, 28, 28, 4) and all(np.array_equal(tiled[..., j], x[:3, ..., 0]) for j in range(4))
    assert architectures.pack(x, 1) is x and architectures.copies(x, 1) is x  # no packing: D's input is untouched


def test_a_packing_d_scores_packs_and_guesses_each_images_code():
    gan = GAN(SMALL.replace(pack=4), jit_compile=False)
    assert gan.discriminator.input_shape == (None, 28, 28, 4)
    x = _images(16)
    score, code_logits = gan._discriminate(x, None)
    assert score.shape == (4, 1) and code_logits.shape == (16, 10)
    # by hand: numpy packs, D's 4 x 10 code logits per pack laid out image by image
    by_hand = np.stack([np.concatenate([x[4 * i + j] for j in range(4)], axis=-1) for i in range(4)])
    out_score, out_code = gan.discriminator(by_hand, training=True)
    np.testing.assert_allclose(np.asarray(score), np.asarray(out_score), atol=1e-6)
    np.testing.assert_allclose(np.asarray(code_logits), np.asarray(out_code).reshape(16, 10), atol=1e-6)


def test_gradients_reach_g_through_every_packed_sample():
    config = SMALL.replace(pack=4)
    gan = GAN(config, jit_compile=False)
    z = tf.constant(np.random.default_rng(1).standard_normal((16, 100)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(z)
        images = gan.generator(architectures.generator_inputs(config, z), training=True)
        score, _ = gan._discriminate(images, None)
        loss = gan.loss.g(score)  # the adversarial term alone: no help from the code's cross-entropy
    per_sample = np.linalg.norm(np.asarray(tape.gradient(loss, z)), axis=1)
    assert score.shape == (4, 1) and np.all(per_sample > 0)


def test_a_packing_d_judges_one_image_alone_in_a_pack_of_copies():
    config = SMALL.replace(pack=2, minibatch_std=4)
    gan = GAN(config, jit_compile=False)
    x = _images(6)
    scores = gan.scores(x, None)
    by_hand = np.asarray(gan.discriminator(np.repeat(x, 2, axis=-1), training=False)[0]).ravel()
    np.testing.assert_allclose(scores, by_hand, atol=1e-6)
    np.testing.assert_allclose(gan.scores(x[:1], None), scores[:1], atol=1e-6)  # alone: no company counts
    # the Inside tab's critic: the same scores, and its saliency is d score / d image through all the copies
    critic = Critic(Generator(config, gan.sampler), gan.discriminator)
    np.testing.assert_allclose(critic.scores(x), scores, atol=1e-5)
    packed = tf.constant(np.repeat(x[:1], 2, axis=-1))
    with tf.GradientTape() as tape:
        tape.watch(packed)
        logit = gan.discriminator(packed, training=False)[0]
    want = np.asarray(tape.gradient(logit, packed))[0].sum(axis=-1)
    logit_seen, gradient = critic.saliency(x[0])
    assert logit_seen == pytest.approx(float(logit[0, 0]), abs=1e-5)
    np.testing.assert_allclose(gradient, want, rtol=1e-4, atol=1e-7)
    frames, pulled = critic.pull(x[0], steps=2)
    assert frames.shape == (3, 28, 28, 1) and np.all(np.isfinite(pulled))


# --- minibatch standard deviation ----------------------------------------------------------------------------


def test_the_minibatch_std_feature_is_each_groups_std():
    x = np.random.default_rng(2).standard_normal((8, 5)).astype(np.float32)
    out = np.asarray(MinibatchStdDev(4)(x, training=True))
    assert out.shape == (8, 6)
    np.testing.assert_array_equal(out[:, :5], x)
    for g in range(2):
        want = np.mean(np.sqrt(np.var(x[4 * g:4 * g + 4].astype(np.float64), axis=0) + 1e-8))
        np.testing.assert_allclose(out[4 * g:4 * g + 4, 5], want, rtol=1e-5)
    # feature maps: one value per group over every position and channel, appended as a constant channel
    maps = np.random.default_rng(3).standard_normal((4, 3, 3, 2)).astype(np.float32)
    out = np.asarray(MinibatchStdDev(2)(maps, training=True))
    assert out.shape == (4, 3, 3, 3)
    want = np.mean(np.sqrt(np.var(maps[:2].astype(np.float64), axis=0) + 1e-8))
    np.testing.assert_allclose(out[:2, ..., 2], want, rtol=1e-5)
    # a batch the group size does not divide is one group; at inference each sample is its own group
    np.testing.assert_allclose(np.asarray(MinibatchStdDev(4)(x[:6], training=True))[:, 5],
                               np.mean(np.sqrt(np.var(x[:6].astype(np.float64), axis=0) + 1e-8)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(MinibatchStdDev(4)(x, training=False))[:, 5], 1e-4, rtol=1e-6)


def test_with_minibatch_std_one_sample_moves_its_groups_scores_in_training_only():
    gan = GAN(SMALL.replace(minibatch_std=4), jit_compile=False)
    assert "MinibatchStdDev" in _layer_types(gan.discriminator)
    x = _images(16)
    y = x.copy()
    y[0] = -y[0]
    for training, moved in ((True, slice(1, 4)), (False, slice(0, 0))):
        a = np.asarray(gan._discriminate(x, None, training=training)[0]).ravel()
        b = np.asarray(gan._discriminate(y, None, training=training)[0]).ravel()
        assert np.all(np.abs(a[moved] - b[moved]) > 1e-6), training  # the rest of its group of 4
        rest = np.ones(16, bool)
        rest[0] = False
        rest[moved] = False
        np.testing.assert_allclose(a[rest], b[rest], atol=1e-6)  # the other groups, and everyone at inference


# --- dropout in D ----------------------------------------------------------------------------------------------


def test_dropout_acts_in_training_and_not_at_inference():
    config = SMALL.replace(d_dropout=0.5)
    gan = GAN(config, jit_compile=False)
    assert [layer.rate for layer in gan.discriminator.layers if type(layer).__name__ == "Dropout"] == [0.5, 0.5]
    x = _images(16)
    first, second = (np.asarray(gan.discriminator(x, training=True)[0]) for _ in range(2))
    assert not np.allclose(first, second)  # a fresh mask each call
    # at inference: deterministic, and exactly the same D without dropout
    plain = GAN(SMALL, jit_compile=False).discriminator
    plain.set_weights(gan.discriminator.get_weights())
    np.testing.assert_allclose(np.asarray(gan.discriminator(x, training=False)[0]),
                               np.asarray(plain(x, training=False)[0]), atol=1e-6)
    np.testing.assert_array_equal(gan.scores(x, None), gan.scores(x, None))


# --- widths ----------------------------------------------------------------------------------------------------


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def test_width_multipliers_scale_the_hidden_layers():
    gan = GAN(SMALL.replace(g_width=2.0, d_width=0.5, pack=2), jit_compile=False)
    # G: [z (100), code one-hot (10)] -> 512 -> 1024 -> 2048 -> 784, BatchNorm's 4 numbers per unit after each
    want_g = (_dense(110, 512) + _dense(512, 1024) + _dense(1024, 2048) + _dense(2048, 784)
              + 4 * (512 + 1024 + 2048))
    assert gan.generator.count_params() == want_g
    # D: a pack of 2 (1,568 pixels) -> 256 -> 128 -> score; code head 128 -> 128 -> 2 x 10
    want_d = _dense(1568, 256) + _dense(256, 128) + _dense(128, 1) + _dense(128, 128) + _dense(128, 20)
    assert gan.discriminator.count_params() == want_d
    conv = GAN(GANConfig(architecture="dcgan", g_width=0.5, d_width=2.0, minibatch_std=4), jit_compile=False)
    # G: 100 -> 7x7x64 (no bias) -> ConvT 32 (no bias) -> ConvT 1; D: Conv 128 -> [+ the std channel] Conv 256 -> 1
    assert conv.generator.count_params() == (100 * 7 * 7 * 64 + 4 * 7 * 7 * 64 + 4 * 4 * 64 * 32 + 4 * 32
                                             + 4 * 4 * 32 * 1 + 1)
    assert conv.discriminator.count_params() == (4 * 4 * 1 * 128 + 128 + 4 * 4 * 129 * 256 + 256 + 7 * 7 * 256 + 1)


def test_mode_seeking_is_msgans_term_and_enters_gs_loss_with_its_weight():
    x, z = _images(8), np.random.default_rng(2).standard_normal((8, 100)).astype(np.float32)
    want = 1 / (np.mean(np.abs(x[:4] - x[4:])) / np.mean(np.abs(z[:4] - z[4:])) + MODE_SEEKING_EPS)
    np.testing.assert_allclose(float(mode_seeking(x, z)), want, rtol=1e-5)
    collapsed = np.repeat(x[:1], 8, axis=0)  # one image for every latent: the term is as large as it gets
    np.testing.assert_allclose(float(mode_seeking(collapsed, z)), 1 / MODE_SEEKING_EPS, rtol=1e-5)
    # two GANs of one seed, the same weights: with weight 2, G's loss is larger by twice the term of G's images
    z = np.random.default_rng(3).standard_normal((16, 100)).astype(np.float32)
    off, on = GAN(SMALL, jit_compile=False), GAN(SMALL.replace(mode_seeking=2.0), jit_compile=False)
    loss_off, loss_on = float(off._g_loss(z, None)()[0]), float(on._g_loss(z, None)()[0])
    fakes = off.generator(architectures.generator_inputs(SMALL, z), training=True)
    np.testing.assert_allclose(loss_on - loss_off, 2.0 * float(mode_seeking(fakes, z)), rtol=1e-4)
    # and its gradient reaches every weight of G's Dense layers
    with tf.GradientTape() as tape:
        term = mode_seeking(on.generator(architectures.generator_inputs(SMALL, z), training=True), z)
    kernels = [v for v in on.generator.trainable_variables if "kernel" in v.path]
    assert len(kernels) == 4 and all(np.abs(np.asarray(g)).max() > 0 for g in tape.gradient(term, kernels))


# --- training, weights folders, the Hub, resuming ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", [{"pack": 2}, {"pack": 4, "minibatch_std": 2}, {"minibatch_std": 4},
                                     {"d_dropout": 0.3}, {"g_width": 1.5, "d_width": 0.5}, EVERY,
                                     {"pack": 2, "r1_gamma": 1.0, "augment": "translation", "d_steps": 2},
                                     {"latent_code": 0, "loss": "bce", "pack": 2, "minibatch_std": 2},
                                     {"mode_seeking": 1.0}],
                         ids=lambda v: ",".join(f"{k}={v}" for k, v in v.items()))
def test_each_option_trains(tiny_data, variant):
    trainer = Trainer(SMALL.replace(**variant), tiny_data)  # compiled with XLA, as the CLI runs
    assert trainer.run() == "finished"
    assert all(np.isfinite(trainer.history[-1][k]) for k in METRICS)


@pytest.mark.slow
def test_the_convolutional_pair_takes_the_options(tiny_data):
    config = SMALL.replace(architecture="dcgan", pack=2, minibatch_std=2, d_dropout=0.2, g_width=0.5, d_width=0.5,
                           steps=10)
    trainer = Trainer(config, tiny_data)
    assert trainer.run() == "finished" and np.isfinite(trainer.history[-1]["g_loss"])


def _folder(path, config):
    gan = GAN(config, jit_compile=False)
    save_models(path, config, gan.sampler, {"steps": 0, "note": "untrained, built for the tests"}, gan.discriminator)
    return path, gan


def test_weights_folders_keep_the_options_and_refuse_a_mismatched_file(tmp_path):
    config = SMALL.replace(**EVERY)
    folder, gan = _folder(tmp_path / "every", config)
    loaded = Generator.load(folder)
    assert loaded.config == config
    np.testing.assert_array_equal(loaded.generate(3, 8), Generator(config, gan.sampler).generate(3, 8))
    x = _images(5)
    critic = Critic(loaded, load_discriminator(folder))
    np.testing.assert_allclose(critic.scores(x), gan.scores(x, None), atol=1e-5)
    # a D of another width is caught by the file's layout before Keras reads it; a G of another width by its stamp
    wide_d, _ = _folder(tmp_path / "wide-d", config.replace(d_width=1.0))
    (folder / "discriminator.weights.h5").write_bytes((wide_d / "discriminator.weights.h5").read_bytes())
    with pytest.raises(WeightsError, match="is refused"):
        load_discriminator(folder)
    wide_g, _ = _folder(tmp_path / "wide-g", config.replace(g_width=1.0))
    (folder / "generator.weights.h5").write_bytes((wide_g / "generator.weights.h5").read_bytes())
    with pytest.raises(WeightsError, match="holds weights of a"):
        Generator.load(folder)


def test_a_model_with_the_options_travels_through_the_hub(monkeypatch, tmp_path):
    config = SMALL.replace(**EVERY)
    folder, _ = _folder(tmp_path / "every", config)
    with local_hub(monkeypatch, {TOKEN: ("alice", True)}) as server:
        push_pull.push(folder, "alice/packed", TOKEN, endpoint=server.url)
        pulled = push_pull.pull("alice/packed", "main", endpoint=server.url, cache_dir=tmp_path / "cache")
    copy = Generator.load(pulled.folder)
    assert copy.config == config
    np.testing.assert_array_equal(copy.generate(7, 16), Generator.load(folder).generate(7, 16))
    x = _images(4)
    np.testing.assert_array_equal(np.asarray(load_discriminator(pulled.folder)(np.repeat(x, 2, -1))[0]),
                                  np.asarray(load_discriminator(folder)(np.repeat(x, 2, -1))[0]))


@pytest.mark.slow
def test_a_run_with_every_option_resumes_exactly(tiny_data, tmp_path):
    config = SMALL.replace(steps=40, **EVERY)
    a, b = straight_and_resumed(config, tiny_data, tmp_path)
    assert a.keys() == b.keys() and any(k.startswith("discriminator_seeds/") for k in a)  # dropout's stream too
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # D's shape, inputs and random state are fixed for a run, and G's width is part of what the weights are
    for changes in ({"pack": 1}, {"minibatch_std": 0}, {"d_dropout": 0.0}, {"d_width": 1.0}):
        with pytest.raises(CheckpointError, match="keeps its discriminator"):
            Trainer.resume_from(tmp_path / "split", tiny_data, changes=changes)
    with pytest.raises(CheckpointError):
        Trainer.resume_from(tmp_path / "split", tiny_data, changes={"g_width": 1.0})
