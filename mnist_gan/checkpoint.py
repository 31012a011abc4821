"""Run checkpoints: every array a run needs plus a JSON header, in one .npz written atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .files import atomic_write

CHECKPOINT_FILE = "checkpoint.npz"
_META_KEY = "__meta__"


def save_checkpoint(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write arrays and meta to `path`; a process killed mid-write leaves the previous checkpoint intact."""
    buffer = io.BytesIO()
    # The header is a plain unicode array: loading it needs no pickle.
    np.savez(buffer, **arrays, **{_META_KEY: np.array(json.dumps(meta))})
    atomic_write(Path(path), buffer.getvalue())


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except Exception as e:  # a truncated or foreign file fails in zipfile, numpy or json
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    return arrays, meta


def load_meta(path: str | Path) -> dict:
    """Only the JSON header of a checkpoint (step, history, config...): no array is read."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(str(npz[_META_KEY]))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
