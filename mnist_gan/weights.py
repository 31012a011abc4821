"""Weights folders: a generator's weights with the config that rebuilds it, and the training record.

Weights are only ever loaded as arrays into a model this package builds from the config, never as a
deserialized model, so a weights folder cannot carry code.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from . import models
from .config import CONFIG_FILE, GANConfig
from .files import atomic_path, atomic_write, read_json, write_json  # noqa: F401  (atomic_write re-exported)
from .sampling import latents, to_uint8

WEIGHTS_FILE = "generator.weights.h5"
DISCRIMINATOR_FILE = "discriminator.weights.h5"  # D too: what inspecting a model needs
RECORD_FILE = "training.json"
METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.png"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "mlp-uncond"  # the shipped model the app and CLI use unless told otherwise (see README: Quality)
RECIPE_MODEL = "mlp-cond"  # the Train tab starts from its recipe: the most quality per minute of CPU (bench/quality.md)
_CONFIG_ATTR = "mnist_gan_config"  # the config is also stamped inside the .h5, so a swapped file is caught


class WeightsError(ValueError):
    """A weights file is missing, corrupt, or built for another model."""


def shipped_models() -> dict[str, Path]:
    """Name -> folder of every model shipped in weights/, the default first."""
    found = {p.name: p for p in sorted(SHIPPED_DIR.iterdir()) if (p / CONFIG_FILE).is_file()} if SHIPPED_DIR.is_dir() else {}
    return dict(sorted(found.items(), key=lambda item: item[0] != DEFAULT_MODEL))


def describe(config: GANConfig) -> str:
    kind = "conditional " if config.conditional else ""
    code = f", latent_code={config.latent_code}" if config.latent_code else ""
    return f"{kind}{config.architecture} generator (latent_dim={config.latent_dim}{code})"


def save_generator(folder: str | Path, config: GANConfig, generator, record: dict | None = None,
                   discriminator=None) -> Path:
    """Write config, weights (G's, and D's when given) and training record to `folder` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in ((WEIGHTS_FILE, generator), (DISCRIMINATOR_FILE, discriminator)):
        if model is None:
            continue
        with atomic_path(folder / name, suffix=".weights.h5") as tmp:  # Keras insists on the suffix
            model.save_weights(tmp, overwrite=True)
            with h5py.File(tmp, "a") as f:
                f.attrs[_CONFIG_ATTR] = json.dumps(config.to_dict())
    write_json(folder / CONFIG_FILE, config.to_dict())
    if record is not None:
        write_json(folder / RECORD_FILE, record)
    return folder


def load_generator(folder: str | Path, expect: GANConfig | None = None):
    """Build the generator that `folder`'s config describes and load its weights into it."""
    folder = Path(folder)
    config = GANConfig.load(folder)
    if expect is not None and expect.signature != config.signature:
        raise WeightsError(f"{folder} holds a {describe(config)}, but a {describe(expect)} was asked for")
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"no {WEIGHTS_FILE} in {folder}")
    stamped = _stamped_config(path)
    if stamped is not None and stamped.signature != config.signature:
        raise WeightsError(f"{path} holds weights of a {describe(stamped)}, but {CONFIG_FILE} describes a {describe(config)}")
    model = models.ARCHITECTURES[config.architecture].generator(config)
    try:
        model.load_weights(path)
    except Exception as e:  # Keras raises ValueError for shape/count mismatches, OSError and others for bad files
        raise WeightsError(f"{path} does not fit a {describe(config)}: {type(e).__name__}: {_first_line(e)}") from None
    return config, model


def _stamped_config(path: Path) -> GANConfig | None:
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get(_CONFIG_ATTR)
    except Exception as e:
        raise WeightsError(f"{path} is not a readable weights file ({type(e).__name__})") from None
    if raw is None:
        return None
    try:
        return GANConfig.from_dict(json.loads(raw))
    except Exception:
        return None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else ""


class Generator:
    """A loaded generator ready to draw digits: seeds in, uint8 pixels out."""

    def __init__(self, config: GANConfig, model, name: str = "", folder: Path | None = None):
        import tensorflow as tf

        self.config, self.model, self.name, self.folder = config, model, name, folder
        # A traced call skips Keras's eager per-call overhead (milliseconds) on every request; the label or code
        # input is built inside it too (as eager ops, it cost 2 ms of a 4 ms grid: measured)
        self._call = tf.function(lambda z, labels: model(models.generator_inputs(config, z, labels), training=False),
                                 reduce_retracing=True)

    @classmethod
    def load(cls, folder: str | Path, name: str | None = None, expect: GANConfig | None = None) -> Generator:
        config, model = load_generator(folder, expect)
        return cls(config, model, name or Path(folder).name, Path(folder))

    @property
    def record(self) -> dict:
        return (read_json(self.folder / RECORD_FILE) if self.folder else None) or {}

    @property
    def metrics(self) -> dict:
        return (read_json(self.folder / METRICS_FILE) if self.folder else None) or {}

    def images(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Float images in [-1, 1], (n, 28, 28, 1), for latents z (and digit labels when conditional)."""
        z = np.asarray(z, np.float32)
        if not np.all(np.isfinite(z)):
            raise ValueError("latent values must be finite numbers")
        if self.config.conditional:
            if labels is None:
                labels = np.arange(len(z)) % models.NUM_CLASSES  # unconditional use: cycle through the digits
            labels = np.asarray(labels, np.int32).reshape(-1, 1)
            if labels.shape[0] != len(z) or labels.min(initial=0) < 0 or labels.max(initial=0) >= models.NUM_CLASSES:
                raise ValueError("labels must be one digit 0-9 per latent")
        else:
            labels = None  # unconditional (a code model's code comes from z)
        # in slices: 10,000 samples at once would need a large activation buffer
        return np.concatenate([self._call(z[i:i + 1000], None if labels is None else labels[i:i + 1000]).numpy()
                               for i in range(0, len(z), 1000)])

    def generate(self, seed: int, n: int, labels=None, temperature: float = 1.0) -> np.ndarray:
        """n uint8 digits (n, 28, 28) from `seed`; the same arguments always give the same pixels."""
        return to_uint8(self.images(latents(seed, n, self.config.latent_dim, temperature), labels))
