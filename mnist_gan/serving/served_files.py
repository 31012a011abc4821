"""The files the app serves: results written once per distinct content, in a folder kept under a size cap.

Every distinct image a visitor asks for is written to gradio's cache folder and gradio's own cleanup goes by age
only, so a crowd could fill the disk within that age: a thread trims the folder, oldest first, going by an index of
what was written (the rest of gradio's cache, by reading it). The latest files are also kept in memory, to be sent
from there; a spot-the-fake round's pictures are kept only there (pngs_once).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan.atomic_files import atomic_write
from mnist_gan.images import encode_gif, encode_png

REMEMBERED = 4096  # results kept by request (a key and a path: ~200 bytes each)
# the latest results' bytes, also kept in memory, from which they are served (ui/page_files.py, ResultFileRoute): a
# file read on the server's event loop is several system calls, each giving up the GIL and waiting to get it back
# while an event's thread runs Python, 7.4 ms a read of a 3 kB file beside one busy thread instead of 0.009 (measured)
RECENT_BYTES = 32 * 2**20
MIN_AGE_S = 10.0  # a file this young may still be on its way to the browser that asked for it
TRIM_EVERY_S = 5.0
NAME = re.compile(r"[0-9a-f]{24}\.(png|gif)")  # a result file's name: its content's hash, or random (pngs_once)


def files(folder: str | Path, skip: Path | None = None) -> list[tuple[float, int, Path]]:
    """(mtime, size, path) of every file under `folder` but those under `skip`, oldest first; files vanishing
    meanwhile are skipped."""
    found = []
    for root, dirs, names in os.walk(folder):
        if skip is not None:
            dirs[:] = [d for d in dirs if Path(root, d) != skip]
        for name in names:
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((stat.st_mtime, stat.st_size, path))
    return sorted(found)


def trim(folder: str | Path, max_bytes: int, min_age_s: float = MIN_AGE_S, now: float | None = None,
         skip: str | Path | None = None) -> list[Path]:
    """Delete the oldest files until `folder` (but `skip`, a folder inside it with a budget of its own) holds at
    most `max_bytes`, never one younger than `min_age_s`; returns the deleted paths. Emptied sub-folders go too
    (gradio makes one per file)."""
    folder = Path(folder).resolve()
    found = files(folder, Path(skip).resolve() if skip else None)
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


def keep_under(trims: list[Callable[[], list[Path]]], every_s: float = TRIM_EVERY_S,
               on_removed: Callable[[list[Path]], None] | None = None, stop: threading.Event | None = None) -> None:
    """Run each trim (it deletes what is over a budget and returns the deleted paths) every `every_s` seconds until
    `stop` is set (for a daemon thread; errors never end it)."""
    stop = stop or threading.Event()
    while not stop.wait(every_s):
        try:
            removed = [path for trim_once in trims for path in trim_once()]
            if removed and on_removed:
                on_removed(removed)
        except Exception:  # a folder deleted under us, a permission change: try again next time
            continue


def png_bytes(image: np.ndarray) -> bytes:
    """The PNG the app serves for a uint8 image. zlib level 1, not the usual 6: a 64-digit grid takes ~1.4 ms
    instead of ~3.5 ms, for ~14% more bytes."""
    return encode_png(image, compress_level=1)


class ResultFiles:
    """Content-addressed result files (one copy per distinct result) in `folder`, trimmed to `max_bytes`."""

    def __init__(self, folder: str | Path, max_bytes: int):
        self.folder, self.max_bytes = Path(folder), max_bytes
        self._stop = threading.Event()
        self._made: OrderedDict[tuple, tuple[str, ...]] = OrderedDict()  # a request's key -> its files
        self._lock = threading.Lock()
        # name -> bytes of the files written last, oldest first, at most RECENT_BYTES: read without the lock
        # (a dict's get is atomic), changed under it
        self._recent: dict[str, bytes] = {}
        self._recent_bytes = 0
        # name -> (when written or served again, size) of every file in the folder, oldest first: what the trimming
        # goes by. Reading the folder instead took a stat a file every TRIM_EVERY_S (some 150,000 files once a
        # Space's folder is at its cap: 227 ms a pass over 20,000, `python -m bench gil`), each a system call that
        # waits for the GIL behind the events' threads
        self._index: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._index_bytes = 0

    def read(self, name: str) -> bytes | None:
        """The bytes of the file `name` in this folder: from memory when it was made lately (a spot-the-fake round's
        pictures are only there), else from the disk (None: in neither)."""
        data = self.recent(name)
        if data is None:
            try:
                data = (self.folder / name).read_bytes()
            except OSError:  # trimmed since, or never there
                return None
        return data

    def recent(self, name: str) -> bytes | None:
        """The bytes of the file `name` in this folder, when it was made lately (None: read it from the disk, where
        it may be)."""
        return self._recent.get(name)

    def _note(self, name: str, size: int | None = None, when: float | None = None) -> None:
        """A file written (its size given) or served again (its size known already): the youngest now. Callers hold
        the lock."""
        old = self._index.pop(name, None)
        if size is None:
            size = old[1] if old else 0
        self._index[name] = (time.time() if when is None else when, size)
        self._index_bytes += size - (old[1] if old else 0)

    def _keep(self, path: Path, data: bytes) -> None:
        """A file written: in the folder's index and in memory."""
        with self._lock:
            self._note(path.name, len(data))
        self._remember(path.name, data)

    def _remember(self, name: str, data: bytes) -> None:
        """`data` kept in memory as the file `name`, the oldest dropped beyond RECENT_BYTES."""
        with self._lock:
            if name in self._recent:
                return
            self._recent[name] = data
            self._recent_bytes += len(data)
            while self._recent_bytes > RECENT_BYTES:
                self._recent_bytes -= len(self._recent.pop(next(iter(self._recent))))

    def remembered(self, key: tuple, make: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
        """The files `make` writes for a request, made once per key while they are kept: a crowd asking for the
        same grid (a lecture's shared seed, a page's first grid) costs neither the model nor the encoding again.
        A key with None in it (a result that may change under the same request) is never remembered."""
        if None in key:
            return make()
        with self._lock:
            paths = self._made.get(key)
            if paths:
                self._made.move_to_end(key)
        if paths:
            try:
                for path in paths:
                    os.utime(path)  # served again: young again, for gradio's own cleanup by age too
                with self._lock:  # and for the trimming, which keeps it while it travels
                    for path in paths:
                        self._note(Path(path).name)
                return paths
            except FileNotFoundError:  # trimmed since: made again
                pass
        paths = make()
        with self._lock:
            self._made[key] = paths
            while len(self._made) > REMEMBERED:
                self._made.popitem(last=False)
        return paths

    def write(self, data: bytes, suffix: str) -> str:
        """The path of a file holding `data`, written now unless an identical one is already there."""
        path = self.folder / (hashlib.sha256(data).hexdigest()[:24] + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.utime(path)  # served again: young again, so age-based cleanup does not delete it on its way out
        else:
            atomic_write(path, data, sync=False)  # a cache: no fsync (milliseconds per request)
        self._keep(path, data)
        return str(path)

    def png(self, image: np.ndarray) -> str:
        """A uint8 image as a PNG file (png_bytes)."""
        return self.write(png_bytes(image), ".png")

    def pngs_once(self, images) -> list[str]:
        """uint8 images as PNGs of their own, each under a random name: for images whose URLs must not tell what
        they show (the same real digit in two spot-the-fake rounds would otherwise have the same name).

        Kept in memory only, never written to the disk: a round's 16 pictures are seen once, by the page that dealt
        it, within seconds, and are sent from memory (ResultFileRoute; an MCP answer reads them there too) while
        they are among the latest RECENT_BYTES (minutes of a class's results); after that they are gone. Written in
        place, a round's 16 files took 2.5 ms, 353 ms beside a thread busy with Python (each system call gives up
        the GIL and waits to get it back); kept in memory, 1.2 and 94 ms (`python -m bench gil`). One system call
        draws all the names."""
        images = list(images)
        token = secrets.token_hex(12 * len(images))
        paths = [self.folder / f"{token[24 * i:24 * (i + 1)]}.png" for i in range(len(images))]
        for path, image in zip(paths, images, strict=True):
            self._remember(path.name, png_bytes(image))
        return [str(path) for path in paths]

    def gif(self, frames: np.ndarray, **options) -> str:
        """uint8 frames as a looping GIF file (options: encode_gif's)."""
        return self.write(encode_gif(frames, **options), ".gif")

    def trim(self, now: float | None = None) -> list[Path]:
        """Delete the oldest files (by when they were written or served again) until the folder holds at most
        max_bytes, never one younger than MIN_AGE_S; returns the deleted paths. By the index, not by reading the
        folder: a file deleted meanwhile by someone else (gradio's cleanup by age) is simply gone from it."""
        cutoff = (time.time() if now is None else now) - MIN_AGE_S
        doomed = []
        with self._lock:
            while self._index_bytes > self.max_bytes and self._index:
                name, (when, size) = next(iter(self._index.items()))
                if when > cutoff:
                    break
                del self._index[name]
                self._index_bytes -= size
                doomed.append(self.folder / name)
        removed = []
        for path in doomed:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                continue
            removed.append(path)
        return removed

    def index_folder(self) -> None:
        """Index what the folder held before this process wrote anything (an earlier run of the app; a write cut
        off), older than all it wrote since."""
        found = files(self.folder)
        with self._lock:
            for mtime, size, path in reversed(found):
                name = str(path.relative_to(self.folder))
                if name not in self._index:
                    self._note(name, size, mtime)
                    self._index.move_to_end(name, last=False)

    def start(self, served: str | Path, others_max_bytes: int,
              on_removed: Callable[[list[Path]], None] | None = None) -> None:
        """Keep this folder under its cap, and the rest of `served` (the folder this one is in: visitors' uploads
        and gradio's own copies) under `others_max_bytes`, in a daemon thread: a flood of uploads can then never
        push out the results other visitors are looking at."""
        def others() -> list[Path]:
            return trim(served, others_max_bytes, skip=self.folder)

        def run() -> None:
            try:
                self.index_folder()
            except OSError:  # not there yet: nothing to index
                pass
            keep_under([self.trim, others], on_removed=on_removed, stop=self._stop)

        threading.Thread(target=run, daemon=True, name="cache-cap").start()

    def stop(self) -> None:
        self._stop.set()
