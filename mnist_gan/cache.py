"""Keep a folder of served files (gradio's cache) under a size cap. Every distinct image a visitor asks for is
written there and gradio's own cleanup goes by age only, so a crowd could fill the disk within that age."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

MIN_AGE_S = 10.0  # a file this young may still be on its way to the browser that asked for it
SWEEP_S = 5.0


def files(folder: str | Path) -> list[tuple[float, int, Path]]:
    """(mtime, size, path) of every file under `folder`, oldest first; files vanishing meanwhile are skipped."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((stat.st_mtime, stat.st_size, path))
    return sorted(found)


def trim(folder: str | Path, max_bytes: int, min_age_s: float = MIN_AGE_S, now: float | None = None) -> list[Path]:
    """Delete the oldest files until `folder` holds at most `max_bytes`, never one younger than `min_age_s`;
    returns the deleted paths. Emptied sub-folders go too (gradio makes one per file)."""
    folder = Path(folder).resolve()
    found = files(folder)
    excess = sum(size for _, size, _ in found) - max_bytes
    cutoff = (time.time() if now is None else now) - min_age_s
    removed = []
    for mtime, size, path in found:
        if excess <= 0 or mtime > cutoff:
            break
        try:
            path.unlink()
        except OSError:
            continue
        excess -= size
        removed.append(path)
        if path.parent != folder:
            try:
                path.parent.rmdir()
            except OSError:
                pass  # not empty, or gone already
    return removed


def keep_under(folder: str | Path, max_bytes: int, every_s: float = SWEEP_S,
               on_removed: Callable[[list[Path]], None] | None = None, stop: threading.Event | None = None) -> None:
    """Trim `folder` every `every_s` seconds until `stop` is set (for a daemon thread; errors never end it)."""
    stop = stop or threading.Event()
    while not stop.wait(every_s):
        try:
            removed = trim(folder, max_bytes)
            if removed and on_removed:
                on_removed(removed)
        except Exception:  # a folder deleted under us, a permission change: try again next time
            continue
