import numpy as np
import pytest

from mnist_gan import data
from mnist_gan.data import DataSourceError, load_mnist
from testing.models import TINY


def test_tiny_set_is_in_unit_range_with_labels(tiny_data):
    assert tiny_data.x_train.shape == (2000, 28, 28, 1) and tiny_data.x_train.dtype == np.float32
    assert tiny_data.x_train.min() == -1.0 and tiny_data.x_train.max() == 1.0
    assert tiny_data.y_train.shape == (2000,) and set(np.unique(tiny_data.y_train)) == set(range(10))
    assert tiny_data.x_test.shape == (1000, 28, 28, 1)


def test_environment_variable_selects_the_file(monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(TINY))
    assert load_mnist().source == str(TINY)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(DataSourceError, match="--data PATH or set MNIST_GAN_DATA"):
        load_mnist(tmp_path / "nope.npz")


def test_wrong_layout_and_corrupt_file(tmp_path):
    np.savez(tmp_path / "other.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataSourceError, match="missing x_train"):
        load_mnist(tmp_path / "other.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataSourceError, match="not a readable .npz"):
        load_mnist(tmp_path / "bad.npz")


def test_offline_keras_download_says_how_to_fix(monkeypatch):
    import keras

    def offline():
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataSourceError, match="Offline\\? Pass --data PATH or set MNIST_GAN_DATA"):
        load_mnist()


def test_keras_path_is_the_default(monkeypatch, tiny_data):
    import keras

    with np.load(TINY) as npz:
        arrays = {k: npz[k] for k in npz.files}
    monkeypatch.setattr(keras.datasets.mnist, "load_data",
                        lambda: ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])))
    loaded = load_mnist()
    assert loaded.source == "keras.datasets.mnist"
    np.testing.assert_array_equal(loaded.x_train, tiny_data.x_train)
