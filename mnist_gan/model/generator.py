"""Weights folders and the one way to call a generator.

A weights folder holds the config that rebuilds the models (gan_config.json), the generator's weights, the
discriminator's when the model was trained here (inspection needs D), and the training record. Weights are only
ever loaded as arrays into models this package builds from the config, never as a deserialized model, so a
weights folder cannot carry code.

`Generator` is the single path from latents (and labels) to images: the app, the trainer's sample grids and the
evaluator all call it.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from mnist_gan.atomic_files import atomic_path, read_json, write_json
from mnist_gan.config import CONFIG_FILE, GANConfig
from mnist_gan.errors import InvalidInput, WeightsError
from mnist_gan.images import latents, to_uint8

from . import architectures, h5_guard

WEIGHTS_FILE = "generator.weights.h5"
DISCRIMINATOR_FILE = "discriminator.weights.h5"
RECORD_FILE = "training.json"
METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.png"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "weights"
DEFAULT_MODEL = "mlp-uncond"  # the shipped model the app and CLI use unless told otherwise (see README: Quality)
BATCH = 1000  # images per traced call: 10,000 samples at once would need a large activation buffer
_CONFIG_ATTR = "mnist_gan_config"  # the config is also stamped inside each .h5, so a swapped file is caught


def shipped_models() -> dict[str, Path]:
    """Name -> folder of every model shipped in weights/, the default first."""
    found = {p.name: p for p in sorted(SHIPPED_DIR.iterdir()) if (p / CONFIG_FILE).is_file()} if SHIPPED_DIR.is_dir() else {}
    return dict(sorted(found.items(), key=lambda item: item[0] != DEFAULT_MODEL))


def describe(config: GANConfig) -> str:
    kind = "conditional " if config.conditional else ""
    code = f", latent_code={config.latent_code}" if config.latent_code else ""
    width = f", g_width={config.g_width:g}" if config.g_width != 1 else ""
    return f"{kind}{config.architecture} generator (latent_dim={config.latent_dim}{code}{width})"


def default_labels(n: int) -> np.ndarray:
    """The digits a conditional model draws when none is asked for: 0-9 in turn (an unconditional draw)."""
    return (np.arange(n) % architectures.NUM_CLASSES).astype(np.int32)


# --- weights folders ------------------------------------------------------------------------------------------

def save_models(folder: str | Path, config: GANConfig, generator, record: dict | None = None,
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
    """(config, generator model) built from `folder`'s config, with its weights loaded."""
    folder = Path(folder)
    config = GANConfig.load(folder)
    if expect is not None and expect.signature != config.signature:
        raise WeightsError(f"{folder.name} holds a {describe(config)}, but a {describe(expect)} was asked for")
    return config, _load_into(folder, WEIGHTS_FILE, config, architectures.ARCHITECTURES[config.architecture].generator)


def load_discriminator(folder: str | Path, config: GANConfig | None = None):
    """The discriminator of `folder` with its weights, or a WeightsError that says what needs it."""
    folder = Path(folder)
    config = config or GANConfig.load(folder)
    if not (folder / DISCRIMINATOR_FILE).is_file():
        raise WeightsError(f"{folder.name} has no discriminator weights ({DISCRIMINATOR_FILE}): features that show "
                           "what D sees need a model saved with its discriminator (any model trained by this "
                           "version, and the shipped ones)")
    return _load_into(folder, DISCRIMINATOR_FILE, config, architectures.ARCHITECTURES[config.architecture].discriminator)


def _load_into(folder: Path, name: str, config: GANConfig, build):
    """The model `build(config)` makes, with the weights of folder/name: inspected first, then loaded by Keras."""
    path, what = folder / name, f"{folder.name}/{name}"  # messages name the file, never the server's path
    if not path.is_file():
        raise WeightsError(f"no {name} in {folder.name}")
    stamped = _stamped_config(path, what)
    if stamped is not None and stamped.signature != config.signature:
        raise WeightsError(f"{what} holds weights of a {describe(stamped)}, but {CONFIG_FILE} describes a "
                           f"{describe(config)}")
    model = build(config)
    h5_guard.check(path, model, what)
    try:
        model.load_weights(path)
    except Exception as e:  # Keras raises ValueError for shape/count mismatches, OSError and others for bad files
        raise WeightsError(f"{what} does not fit a {describe(config)}: {type(e).__name__}: {_first_line(e)}") from None
    return model


def _stamped_config(path: Path, what: str) -> GANConfig | None:
    try:
        with h5py.File(path, "r") as f:
            if _CONFIG_ATTR not in f.attrs:
                return None
            if f.attrs.get_id(_CONFIG_ATTR).get_storage_size() > h5_guard.MAX_ATTRIBUTE_BYTES:
                raise WeightsError(f"{what} is refused: its config stamp is too large")
            raw = f.attrs[_CONFIG_ATTR]
    except WeightsError:
        raise
    except Exception as e:
        raise WeightsError(f"{what} is not a readable weights file ({type(e).__name__})") from None
    try:
        return GANConfig.from_dict(json.loads(raw))
    except Exception:  # an unreadable stamp proves nothing either way: the layout check decides
        return None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else ""


# --- drawing ------------------------------------------------------------------------------------------------------

class Generator:
    """A generator ready to draw digits: latents (and labels) in, images out. Wraps a loaded weights folder or a
    training run's live sampler (whose weights change in place)."""

    def __init__(self, config: GANConfig, model, name: str = "", folder: Path | None = None):
        import tensorflow as tf

        self.config, self.model, self.name, self.folder = config, model, name, folder
        # A traced call skips Keras's eager per-call overhead (milliseconds) on every request; the label or code
        # input is built inside it too (as eager ops, it cost 2 ms of a 4 ms grid: measured)
        self._call = tf.function(lambda z, labels: model(architectures.generator_inputs(config, z, labels), training=False),
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

    def labels_for(self, n: int, labels=None) -> np.ndarray | None:
        """The labels a draw of n uses: None for unconditional models (a code model's code comes from z), else
        the given digits (checked) or 0-9 in turn."""
        if not self.config.conditional:
            return None
        if labels is None:
            return default_labels(n)
        labels = np.asarray(labels, np.int32).reshape(-1)
        if labels.shape[0] != n or labels.min(initial=0) < 0 or labels.max(initial=0) >= architectures.NUM_CLASSES:
            raise InvalidInput("labels must be one digit 0-9 per latent")
        return labels

    def images(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Float images in [-1, 1], (n, 28, 28, 1), for latents z (and digit labels when conditional)."""
        z = np.asarray(z, np.float32)
        if not np.all(np.isfinite(z)):
            raise InvalidInput("latent values must be finite numbers")
        labels = self.labels_for(len(z), labels)
        if labels is not None:
            labels = labels.reshape(-1, 1)
        return np.concatenate([self._call(z[i:i + BATCH], None if labels is None else labels[i:i + BATCH]).numpy()
                               for i in range(0, len(z), BATCH)])

    def generate(self, seed: int, n: int, labels=None, temperature: float = 1.0) -> np.ndarray:
        """n uint8 digits (n, 28, 28) from `seed`; the same arguments always give the same pixels."""
        return to_uint8(self.images(latents(seed, n, self.config.latent_dim, temperature), labels))
