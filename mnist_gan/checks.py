"""Values from people and API callers, checked: each check returns the value in the package's own type or raises an
InvalidInput that names the field and quotes what was sent (cut short: a caller can send megabytes)."""

from __future__ import annotations

import math

import numpy as np

from .errors import InvalidInput, shown

MAX_Z = 10.0  # |z_i| beyond this is far outside N(0, 1): refused rather than drawn
DIGIT_TEXT = tuple("0123456789")  # what a picker sends; str.isdigit() would also let "²" through to int()


def whole(value, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] (a form's float 3.0 included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)) or not math.isfinite(value) \
            or value != int(value) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    return int(value)


def digit(value) -> int:
    """A digit 0-9 from a picker ("3") or an API call (3)."""
    if isinstance(value, str) and value.strip() in DIGIT_TEXT:
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 9:
        raise InvalidInput(f"digit must be one of 0-9, got {shown(value)}")
    return int(value)


def latent(z, latent_dim: int) -> np.ndarray:
    """A latent vector from an API call or the page: latent_dim finite numbers within +-MAX_Z, as float32."""
    if isinstance(z, np.ndarray):
        z = z.tolist()
    if not isinstance(z, (list, tuple)) or len(z) != latent_dim or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
        raise InvalidInput(f"z must be a list of {latent_dim} numbers, got {shown(z)}")
    z = np.asarray(z, np.float64)
    if not np.all(np.isfinite(z)) or np.abs(z).max() > MAX_Z:
        raise InvalidInput(f"z's values must be finite and within +-{MAX_Z:g}")
    return z.astype(np.float32)
