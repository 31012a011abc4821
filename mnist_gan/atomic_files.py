"""Atomic file writes: a process killed mid-write leaves the old file or the new one, never half of one."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"  # partial files carry this prefix, so leftovers of a killed process are easy to find
MAX_JSON_BYTES = 1 << 20  # every JSON file this package reads is a few kB; a larger one is a mistake or an attack
MAX_JSON_DEPTH = 32  # Keras' own config nests ~8 deep; Python's parser and walkers recurse once per level
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')


@contextmanager
def atomic_path(path: str | Path, suffix: str = "", sync: bool = True):
    """Yields a temporary path beside `path`; on success it replaces `path` in one rename, else it is removed.

    sync=False skips the fsync (milliseconds per file): for the app's cache of results in the temp folder.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        if sync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; these are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes, sync: bool = True) -> None:
    with atomic_path(path, sync=sync) as tmp:
        tmp.write_bytes(data)


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_sha256(path: str | Path) -> str:
    """file_sha256, read once per version of the file (a resumed run rewrites its weights: a new size or time, a new
    hash): for a file asked about on every request."""
    stat = Path(path).stat()
    return _sha256_of(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def write_arrays(path: str | Path, arrays: dict) -> Path:
    """numpy arrays as one compressed .npz, written atomically (not synced: a lost one is redrawn or shown as
    missing, never half), its folder made if needed."""
    import io

    import numpy as np

    path = Path(path)
    path.parent.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue(), sync=False)
    return path


def read_arrays(path: str | Path) -> dict:
    """The arrays of an .npz written by write_arrays (no pickles)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write_json(path: str | Path, data: dict) -> None:
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def read_json(path: str | Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing, not valid JSON, not an object, or beyond load_json's
    bounds (for files that only describe, such as a training record)."""
    try:
        return load_json(path)
    except (OSError, ValueError):
        return None


def load_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> dict:
    """The JSON object in `path`, read as untrusted input: at most `max_bytes`, nested at most `max_depth` deep,
    an object at the top. OSError when it cannot be read; ValueError, saying what is wrong, for anything else."""
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise ValueError(f"it is larger than {max_bytes:,} bytes")
    text = path.read_bytes().decode("utf-8", errors="replace")
    if json_depth(text) > max_depth:
        raise ValueError(f"it is nested more than {max_depth} levels deep")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"it is not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("it does not hold a JSON object")
    return data


def json_depth(text: str) -> int:
    """How deeply JSON text nests its arrays and objects, counted without parsing (strings are skipped)."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def remove_partial_files(folder: str | Path) -> None:
    """Remove temporary files left by a process killed mid-write (the files they were replacing are intact)."""
    for leftover in Path(folder).glob(TMP_PREFIX + "*"):
        leftover.unlink(missing_ok=True)
