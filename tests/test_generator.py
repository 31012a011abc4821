import random

import numpy as np
import pytest

from mnist_gan.config import GANConfig
from mnist_gan.errors import InvalidInput, WeightsError
from mnist_gan.model import architectures
from mnist_gan.model.generator import WEIGHTS_FILE, Generator, save_models, shipped_models


def _saved(tmp_path, config, name="m"):
    generator, _ = architectures.build(config)
    save_models(tmp_path / name, config, generator, {"steps": 0})
    return tmp_path / name, generator


@pytest.mark.parametrize("config", [GANConfig(seed=3), GANConfig(conditional=True, spectral_norm=True),
                                    GANConfig(architecture="dcgan", latent_code=10, spectral_norm=True)],
                         ids=["classic", "conditional-sn", "dcgan-code-sn"])
def test_a_pairs_first_weights_come_from_its_seed_alone(config, monkeypatch):
    """Whatever Python's shared `random` gives meanwhile (another thread building or loading a model), a pair's
    first weights are the same. Keras draws unseeded layers' seeds from it: a resumed run once differed from a
    straight one in every weight."""
    def weights():
        return [w for model in architectures.build(config) for w in model.get_weights()]

    alone = weights()
    random.seed(1)  # what another thread leaves: another state, and other draws in between
    monkeypatch.setattr(random, "randint", lambda a, b, draw=random.randint: draw(a, b) ^ 0x5A5A)
    for a, b in zip(alone, weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_round_trip_gives_the_same_pixels(tmp_path):
    folder, generator = _saved(tmp_path, GANConfig(seed=5))
    loaded = Generator.load(folder)
    z = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    np.testing.assert_allclose(loaded.images(z), np.asarray(generator(z, training=False)), atol=1e-6)  # graph vs eager
    np.testing.assert_array_equal(loaded.generate(9, 8), loaded.generate(9, 8))
    assert loaded.generate(9, 8).dtype == np.uint8 and loaded.record == {"steps": 0}


def test_conditional_generator_takes_digits(tmp_path):
    folder, _ = _saved(tmp_path, GANConfig(architecture="dcgan", conditional=True))
    g = Generator.load(folder)
    assert g.generate(1, 3, labels=[7, 7, 7]).shape == (3, 28, 28)
    assert not np.array_equal(g.generate(1, 1, labels=[1]), g.generate(1, 1, labels=[8]))
    with pytest.raises(InvalidInput, match="one digit 0-9"):
        g.generate(1, 2, labels=[3, 11])


def test_a_code_model_takes_its_code_from_z(tmp_path):
    folder, generator = _saved(tmp_path, GANConfig(latent_code=10))
    g = Generator.load(folder)
    z = np.random.default_rng(0).standard_normal((6, 100)).astype(np.float32)
    code = np.argmax(z[:, :10], axis=1)[:, None].astype(np.int32)
    np.testing.assert_allclose(g.images(z), np.asarray(generator([z, code], training=False)), atol=1e-6)
    other = (code + 1) % 10
    assert not np.allclose(g.images(z), np.asarray(generator([z, other], training=False)), atol=1e-3)
    np.testing.assert_array_equal(g.generate(3, 4), g.generate(3, 4))
    with pytest.raises(WeightsError, match=r"latent_code=10"):
        Generator.load(folder, expect=GANConfig())


def test_weights_of_another_architecture_are_refused_naming_both(tmp_path):
    classic, _ = _saved(tmp_path, GANConfig(), "classic")
    dcgan, _ = _saved(tmp_path, GANConfig(architecture="dcgan", latent_dim=64), "dcgan")
    (dcgan / WEIGHTS_FILE).write_bytes((classic / WEIGHTS_FILE).read_bytes())  # a swapped file
    with pytest.raises(WeightsError, match=r"classic generator \(latent_dim=100\).*dcgan generator \(latent_dim=64\)"):
        Generator.load(dcgan)
    with pytest.raises(WeightsError, match=r"holds a classic generator.*dcgan generator \(latent_dim=64\) was asked"):
        Generator.load(classic, expect=GANConfig(architecture="dcgan", latent_dim=64))


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    folder, _ = _saved(tmp_path, GANConfig())
    (folder / WEIGHTS_FILE).write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        Generator.load(folder)
    other, _ = _saved(tmp_path, GANConfig(latent_dim=64), "other")
    import h5py  # an unstamped file (e.g. written by plain Keras) that does not fit

    with h5py.File(other / WEIGHTS_FILE, "a") as f:
        del f.attrs["mnist_gan_config"]
    (folder / WEIGHTS_FILE).write_bytes((other / WEIGHTS_FILE).read_bytes())
    with pytest.raises(WeightsError, match=r"m/generator.weights.h5 is refused: 'layers/dense/vars/0' is <f4 \(64, 256\), "
                                           r"this model needs <f4 \(100, 256\)"):
        Generator.load(folder)


def test_shipped_models_load_and_are_deterministic():
    shipped = shipped_models()
    assert "classic" in shipped
    for name, folder in shipped.items():
        g = Generator.load(folder)
        a, b = g.generate(42, 16), g.generate(42, 16)
        np.testing.assert_array_equal(a, b)
        assert a.std() > 20, f"{name} draws flat images"
        record = g.record
        assert record["steps"] >= 1 and "machine" in record and "wall_time_s" in record
