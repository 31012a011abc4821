"""MNIST in the package's one pixel convention: float32 in [-1, 1], shape (N, 28, 28, 1), with labels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataSourceError, InvalidInput

DATA_ENV = "MNIST_GAN_DATA"
KEYS = ("x_train", "y_train", "x_test", "y_test")
SAMPLE_DATA = Path(__file__).resolve().parent / "assets" / "mnist_sample.npz"  # 2,000 + 1,000 real digits (README)
SAMPLE_LABEL = "bundled sample, 2,000 images"


@dataclass(frozen=True)
class MNIST:
    x_train: np.ndarray  # float32 [-1, 1], (N, 28, 28, 1)
    y_train: np.ndarray  # int32, (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 images to float32 [-1, 1] with a channel axis (the inverse of sampling.to_uint8)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise InvalidInput(f"expected uint8 images, got {images.dtype}")
    x = images.astype(np.float32) / 127.5 - 1.0
    return x.reshape(-1, 28, 28, 1)


def load_mnist(path: str | os.PathLike | None = None) -> MNIST:
    """Load MNIST from `path`, else $MNIST_GAN_DATA, else keras.datasets (downloads once, then cached)."""
    path = path or os.environ.get(DATA_ENV)
    if path:
        arrays, source = _load_npz(Path(path)), str(path)
    else:
        arrays, source = _load_keras(), "keras.datasets.mnist"
    x_train, y_train, x_test, y_test = arrays
    return MNIST(to_unit_range(x_train), y_train.astype(np.int32), to_unit_range(x_test), y_test.astype(np.int32), source)


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    if not path.is_file():
        raise DataSourceError(f"MNIST file not found: {path}. Pass --data PATH or set {DATA_ENV} to an existing .npz.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataSourceError(f"{path} is not in MNIST layout: missing {', '.join(missing)} (needs {', '.join(KEYS)}).")
            arrays = tuple(npz[k] for k in KEYS)
    except DataSourceError:
        raise
    except Exception as e:  # zip/npy errors have many types; all mean "not a readable npz"
        raise DataSourceError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}).") from None
    x_train, y_train, x_test, y_test = arrays
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),):
            raise DataSourceError(f"{path}: x_{name} must be uint8 (N, 28, 28) with N labels, got {x.dtype} {x.shape}, {y.shape}.")
    return arrays


def _load_keras() -> tuple[np.ndarray, ...]:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as e:  # urllib/socket errors: offline, proxy, DNS...
        raise DataSourceError(
            f"could not download MNIST through keras.datasets ({type(e).__name__}). "
            f"Offline? Pass --data PATH or set {DATA_ENV} to a local mnist.npz "
            "(keys x_train, y_train, x_test, y_test as keras.datasets.mnist.load_data() returns them)."
        ) from None
    return x_train, y_train, x_test, y_test


def mnist_label(path: str | None) -> str:
    """What a run trains on, in words (never a server path: visitors see it)."""
    if path:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return f"MNIST, {len(npz['y_train']):,} images"
        except Exception:  # the training process says what is wrong with the file; here it is only a label
            return "MNIST"
    return "MNIST, 60,000 images"
