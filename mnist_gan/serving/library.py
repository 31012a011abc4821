"""The models an app can use: every shipped model, plus runs trained or pulled since start-up.

What visitors can make the app grow is bounded: at most `max_added` trained or pulled models are kept (the least
recently used goes first, and the caller is told, so a pulled one leaves the Hub cache too), and at most
`max_loaded` generators stay in memory (any other is loaded again when asked for).
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from pathlib import Path

from mnist_gan.atomic_files import read_json
from mnist_gan.config import GANConfig
from mnist_gan.errors import UnknownModel, shown
from mnist_gan.model.generator import DEFAULT_MODEL, METRICS_FILE, RECORD_FILE, Generator, describe, shipped_models

MAX_ADDED = 8  # trained and pulled models kept (each ~6 MB on disk, ~12 MB in memory once loaded: measured)
MAX_LOADED = 12  # generators kept in memory


class Library:
    """Name -> weights folder, each loaded on first use and then cached (thread-safe)."""

    def __init__(self, folders: dict[str, Path] | None = None, max_added: int = MAX_ADDED,
                 max_loaded: int = MAX_LOADED):
        folders = shipped_models() if folders is None else folders
        self._folders = dict(folders)
        self._sources = {name: "shipped" for name in folders}
        self._added: OrderedDict[str, None] = OrderedDict()  # trained or pulled, least recently used first
        self._loaded: OrderedDict[str, Generator] = OrderedDict()
        self.max_added, self.max_loaded = max_added, max_loaded
        self._lock = threading.Lock()
        self.default = DEFAULT_MODEL if DEFAULT_MODEL in folders else next(iter(folders), None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._folders)

    def add(self, name: str, folder: str | Path, source: str) -> list[tuple[str, Path]]:
        """Register a weights folder (a finished run, a pulled repo); loads it now so a bad folder fails here.
        Returns the (name, folder) of the models this pushed out, least recently used first."""
        generator = Generator.load(folder, name=name)
        with self._lock:
            self._folders[name], self._sources[name] = Path(folder), source
            self._added[name] = None
            self._added.move_to_end(name)
            dropped = self._keep(name, generator)
            evicted = []
            for old in list(self._added):
                if len(self._added) <= self.max_added:
                    break
                if old in (name, self.default):
                    continue
                evicted.append((old, self._folders[old]))
                dropped |= old in self._loaded
                self._forget(old)
        if dropped:  # a Keras model is a web of reference cycles: only the cycle collector frees its ~12 MB
            gc.collect()
        return evicted

    def remove(self, name: str) -> None:
        """Forget a trained or pulled model (its folder is the caller's to delete); shipped ones stay."""
        with self._lock:
            if name in self._added and name != self.default:
                self._forget(name)

    def _forget(self, name: str) -> None:  # callers hold the lock
        for table in (self._folders, self._sources, self._added, self._loaded):
            table.pop(name, None)

    def _keep(self, name: str, generator: Generator) -> bool:  # callers hold the lock
        """Keep a loaded generator, dropping the least recently used beyond max_loaded; True if one was."""
        self._loaded[name] = generator
        self._loaded.move_to_end(name)
        dropped = len(self._loaded) > self.max_loaded
        while len(self._loaded) > self.max_loaded:
            self._loaded.popitem(last=False)
        return dropped

    def _check(self, name: str) -> None:
        if not isinstance(name, str) or name not in self._folders:  # callers hold the lock
            raise UnknownModel(f"unknown model {shown(name)}; choose one of: {', '.join(self._folders)}")

    def get(self, name: str) -> Generator:
        """The loaded generator called `name`."""
        with self._lock:
            self._check(name)
            if name in self._added:
                self._added.move_to_end(name)
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            # under the lock: two requests never load the same model twice
            generator = Generator.load(self._folders[name], name=name)
            dropped = self._keep(name, generator)
        if dropped:
            gc.collect()
        return generator

    def folder(self, name: str) -> Path:
        """The weights folder of `name` (a server path: for the package, never for a visitor)."""
        with self._lock:
            self._check(name)
            return self._folders[name]

    def source(self, name: str) -> str:
        """Where `name` came from: "shipped", or what trained or pulled it."""
        with self._lock:
            self._check(name)
            return self._sources[name]

    def catalog(self) -> list[dict]:
        """Every model the app can use (shipped, trained here, pulled), described by info(), the default first."""
        names = self.names()
        return [self.info(name) for name in sorted(names, key=lambda name: name != self.default)]

    def info(self, name: str) -> dict:
        """What a person (or a script) needs to pick a model; reads the folder, loads no weights."""
        with self._lock:
            self._check(name)
            folder, source = self._folders[name], self._sources[name]
        config, record = GANConfig.load(folder), read_json(folder / RECORD_FILE) or {}
        steps = record.get("steps")
        return {"name": name, "source": source, "description": describe(config),
                "architecture": config.architecture, "conditional": config.conditional,
                "latent_dim": config.latent_dim, "steps": steps if isinstance(steps, int) else None}

    def details(self, name: str) -> dict:
        """info() plus the model's whole config and its measured quality (the numbers of its metrics.json: none
        when it was never measured): what its card shows. Reads the folder, loads no weights, names no path."""
        info = self.info(name)
        with self._lock:
            self._check(name)
            folder = self._folders[name]
        metrics = read_json(folder / METRICS_FILE) or {}
        quality = {key: value for key, value in metrics.items() if _number(value) or (
            isinstance(value, list) and value and all(_number(v) for v in value))}
        return {**info, "config": GANConfig.load(folder).to_dict(), "quality": quality}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
