"""The one frozen config: every hyperparameter of a run, saved as JSON beside the weights."""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
from dataclasses import dataclass, fields
from pathlib import Path

CONFIG_FILE = "gan_config.json"  # not config.json: that name belongs to Keras's own saved-model layout


_SHORT = reprlib.Repr()  # Python 3.11's Repr takes no arguments
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 8, 4, 2


def shown(value) -> str:
    """A bad value as an error message quotes it: its repr, cut short (an API caller can send megabytes)."""
    return _SHORT.repr(value)


class ConfigError(ValueError):
    """A config value is invalid; the message names the field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class GANConfig:
    """Everything needed to rebuild and retrain a model exactly. Defaults are the classic Keras recipe."""

    architecture: str = "classic"
    conditional: bool = False
    # InfoGAN: the argmax of z's first `latent_code` entries is a categorical code G also sees as a one-hot, and D
    # learns to guess it back. No labels are used, yet the discrete code gives the digits' separate shapes their
    # own latent regions (0: no code)
    latent_code: int = 0
    latent_dim: int = 100
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta_1: float = 0.5
    loss: str = "bce"  # "bce": the recipe's binary cross-entropy; "hinge": hinge loss on D's logit
    label_smoothing: float = 0.0  # real labels become 1 - label_smoothing in D's step
    ema_decay: float = 0.0  # 0 disables the moving average of G's weights
    steps: int = 30_000
    sample_every: int = 500
    eval_every: int = 0  # 0: no quality evaluation during training
    checkpoint_every: int = 1_000
    seed: int = 0

    def __post_init__(self) -> None:
        from .losses import LOSSES  # lazy: the registries import Keras
        from .models import ARCHITECTURES

        _check_types(self)
        if self.architecture not in ARCHITECTURES:
            raise ConfigError("architecture",
                              f"unknown {shown(self.architecture)}; choose one of {sorted(ARCHITECTURES)}")
        if self.loss not in LOSSES:
            raise ConfigError("loss", f"unknown {shown(self.loss)}; choose one of {sorted(LOSSES)}")
        for name, low, high in (
            ("latent_dim", 1, 4096),
            ("batch_size", 1, 4096),
            ("steps", 1, 10_000_000),
            ("sample_every", 1, 10_000_000),
            ("checkpoint_every", 1, 10_000_000),
            ("eval_every", 0, 10_000_000),
            ("seed", 0, 2**32 - 1),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(name, f"must be between {low} and {high}, got {value}")
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1):
                raise ConfigError(name, f"must be a learning rate in (0, 1], got {value}")
        for name in ("beta_1", "ema_decay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1):
                raise ConfigError(name, f"must be in [0, 1), got {value}")
        if self.latent_code and not 2 <= self.latent_code <= self.latent_dim:
            raise ConfigError("latent_code",
                              f"must be 0 or between 2 and latent_dim ({self.latent_dim}), got {self.latent_code}")
        if self.latent_code and self.conditional:
            raise ConfigError("latent_code", "a class-conditional model is told the digit; it takes no latent code")
        if not (math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 0.5):
            raise ConfigError("label_smoothing", f"must be in [0, 0.5), got {self.label_smoothing}")

    @property
    def signature(self) -> tuple:
        """What fixes the generator's shape: weights fit any config with the same signature."""
        return self.architecture, self.conditional, self.latent_code, self.latent_dim

    def replace(self, **changes) -> GANConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GANConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], "is not a GANConfig field")
        return cls(**data)

    def save(self, folder: str | Path) -> Path:
        from .files import write_json

        path = Path(folder) / CONFIG_FILE
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, folder: str | Path) -> GANConfig:
        path = Path(folder) / CONFIG_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no {CONFIG_FILE} in {folder}: not an mnist-gan weights folder") from None
        except json.JSONDecodeError as e:
            raise ConfigError("file", f"{path} is not valid JSON ({e.msg})") from None
        if not isinstance(data, dict):
            raise ConfigError("file", f"{path} does not hold a JSON object")
        return cls.from_dict(data)


def _check_types(config: GANConfig) -> None:
    """JSON and forms hand us strings and floats; refuse them by field name instead of failing deep in Keras."""
    for f in fields(config):
        value = getattr(config, f.name)
        expected = {"str": str, "bool": bool, "int": int, "float": (int, float)}[f.type]
        # bool is an int subclass: a True batch size is a mistake, not 1
        if not isinstance(value, expected) or (f.type != "bool" and isinstance(value, bool)):
            raise ConfigError(f.name, f"must be {f.type}, got {type(value).__name__} {shown(value)}")
