"""The generators the page runs in a visitor's browser: each model's ONNX file, as shipped beside its weights, or
exported by the app once per weights file (its sha256) into a cache folder, in the background.

A model trained here or pulled from the Hub has no file the app trusts: a pulled repo's own generator.onnx was
checked against the uploader's manifest, not against its weights, so the app exports its own from the weights it
inspected and loaded. Until that export is done (1-3 s of CPU, one at a time, beside the directions), the page
draws that model on the server. Files are handed out by their content's sha256 only.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from mnist_gan.atomic_files import current_sha256
from mnist_gan.errors import MnistGanError, log
from mnist_gan.model.generator import WEIGHTS_FILE
from mnist_gan.model.onnx_export import ONNX_FILE, ONNX_INFO, current_info, export_folder

from .library import Library

MAX_EXPORTS = 16  # exported files kept (~6 MB each), the oldest deleted first
MAX_SERVED = 64  # files the app answers for by hash (every model's current one, and a few it replaced)
MAKING = "this model's browser file is being made"


@dataclass(frozen=True)
class BrowserFile:
    """A model's ONNX file as the page fetches it: addressed by its content."""

    sha256: str
    size: int
    path: Path


class BrowserModels:
    """Model name -> its ONNX file (or why there is none yet); sha256 -> the file, for the route that serves it."""

    def __init__(self, library: Library, cache_dir: Path | None, slow: threading.Semaphore,
                 max_exports: int = MAX_EXPORTS):
        """cache_dir: where the app's own exports go (None: only shipped files); slow: held while exporting."""
        self.library, self.cache_dir, self.max_exports = library, cache_dir, max_exports
        self._slow = slow
        self._lock = threading.Lock()
        self._exporting: set[str] = set()  # weights sha256s being exported
        self._failed: dict[str, str] = {}  # weights sha256 -> why its export failed (not tried again)
        self._served: OrderedDict[str, BrowserFile] = OrderedDict()

    def file(self, model: str) -> tuple[BrowserFile | None, str | None]:
        """(the model's ONNX file, None), or (None, why the page must draw it on the server for now)."""
        folder = self.library.folder(model)
        weights = current_sha256(folder / WEIGHTS_FILE)
        if self.library.source(model) == "shipped" and _current(folder, weights):
            return self._serve(folder / ONNX_FILE), None
        if self.cache_dir is None:
            return None, "this model has no browser file"
        exported = self.cache_dir / weights
        if _current(exported, weights):
            return self._serve(exported / ONNX_FILE), None
        with self._lock:
            if weights in self._failed:
                return None, self._failed[weights]
            if weights not in self._exporting:
                self._exporting.add(weights)
                # not a daemon: TensorFlow aborts the process when it is stopped mid-export at exit
                threading.Thread(target=self._export, args=(folder, weights), name=f"onnx-export-{weights[:8]}").start()
        return None, MAKING

    def path(self, digest: str) -> BrowserFile | None:
        """The file handed out whose sha256 starts with `digest` (16 hex digits or more)."""
        if len(digest) < 16:
            return None
        with self._lock:
            return next((f for sha, f in self._served.items() if sha.startswith(digest)), None)

    def _serve(self, path: Path) -> BrowserFile:
        found = BrowserFile(current_sha256(path), path.stat().st_size, path)
        with self._lock:
            self._served[found.sha256] = found
            self._served.move_to_end(found.sha256)
            while len(self._served) > MAX_SERVED:
                self._served.popitem(last=False)
        return found

    def _export(self, folder: Path, weights: str) -> None:
        """Export `folder` into cache_dir/weights, whole or not at all; then keep the newest max_exports."""
        try:
            with self._slow:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=self.cache_dir))  # hidden from _prune
                try:
                    export_folder(folder, tmp)
                    shutil.rmtree(self.cache_dir / weights, ignore_errors=True)
                    tmp.rename(self.cache_dir / weights)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            self._prune()
        except (MnistGanError, OSError) as e:
            log.warning("no browser file for %s: %s", folder.name, e)
            with self._lock:
                self._failed[weights] = "its browser file could not be made"
        except Exception as e:  # a bug: logged with its traceback; the page keeps drawing on the server
            log.error("exporting %s to ONNX failed", folder.name, exc_info=e)
            with self._lock:
                self._failed[weights] = "its browser file could not be made"
        finally:
            with self._lock:
                self._exporting.discard(weights)

    def _prune(self) -> None:
        folders = sorted((p for p in self.cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime)
        for old in folders[:max(0, len(folders) - self.max_exports)]:
            shutil.rmtree(old, ignore_errors=True)


def _current(folder: Path, weights: str) -> bool:
    """Whether folder's ONNX file was exported from the weights whose sha256 is `weights` (read once per version of
    the two files: hashing a 6 MB file on every page's question would cost ~10 ms each)."""
    try:
        stats = tuple((s.st_size, s.st_mtime_ns) for s in ((folder / ONNX_FILE).stat(), (folder / ONNX_INFO).stat()))
    except OSError:
        return False
    return _current_of(str(folder), weights, stats)


@functools.lru_cache(maxsize=128)
def _current_of(folder: str, weights: str, stats: tuple) -> bool:
    return current_info(folder, weights) is not None

