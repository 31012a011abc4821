"""One root for every error the package raises on purpose, and the helpers that turn errors into messages.

A `MnistGanError` is a problem a person can fix (a bad seed, a missing file, a refused token): its message says
what and how, and front ends (the app, the CLI, the training child) show it as it is. Anything else that escapes is
a bug: front ends log it with its traceback and show a short "internal error" line instead (`internal_error`).
"""

from __future__ import annotations

import logging
import reprlib
import secrets

log = logging.getLogger("mnist_gan")

_SHORT = reprlib.Repr()  # Python 3.11's Repr takes no arguments
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 8, 4, 2


def shown(value) -> str:
    """A bad value as an error message quotes it: its repr, cut short (an API caller can send megabytes)."""
    return _SHORT.repr(value)


class MnistGanError(Exception):
    """The base: a problem a person can fix; the message says what and how, and never holds a secret."""


class InvalidInput(MnistGanError):
    """A value from a person or an API caller is out of range or of the wrong kind (a seed, a grid size...)."""


class ConfigError(InvalidInput):
    """A config value is invalid; the message names the field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownModel(InvalidInput):
    """No model of that name; the message lists the names there are."""


class DataSourceError(MnistGanError):
    """MNIST could not be loaded; the message says how to fix it."""


class WeightsError(MnistGanError):
    """A weights folder is missing, corrupt, or built for another model."""


class CheckpointError(MnistGanError):
    """A checkpoint is missing, unreadable, or belongs to another model."""


class ExportError(MnistGanError):
    """A generator could not be exported to ONNX (the converter is missing, or it failed)."""


class HubError(MnistGanError):
    """A push or pull failed; the message is for a person and never contains a token."""


class AccessDenied(MnistGanError):
    """The action is reserved to the Space's admins; the message says so plainly."""


class Busy(MnistGanError):
    """A training run is in progress, or there is none to control; the message says which."""


class RunFolderError(MnistGanError):
    """The runs folder cannot be written (read-only, disk full...); the message says where and why."""


def internal_error(error: BaseException, where: str = "the app's log") -> str:
    """Log a bug with its traceback under a short reference; returns the one line to show instead of it."""
    reference = secrets.token_hex(4)
    log.error("internal error %s: %s", reference, type(error).__name__, exc_info=error)
    return (f"internal error ({type(error).__name__}): this is a bug, not your input. Its traceback is in "
            f"{where}, under reference {reference}")
