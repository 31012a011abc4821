"""Atomic file writes: a process killed mid-write leaves the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"  # partial files carry this prefix, so leftovers of a killed process are easy to sweep


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


def write_json(path: str | Path, data: dict) -> None:
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def read_json(path: str | Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def sweep_partial_files(folder: str | Path) -> None:
    """Remove temporary files left by a process killed mid-write (the files they were replacing are intact)."""
    for leftover in Path(folder).glob(TMP_PREFIX + "*"):
        leftover.unlink(missing_ok=True)
