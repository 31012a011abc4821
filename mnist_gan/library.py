"""The models an app can use: every shipped model, plus runs trained or pulled since start-up."""

from __future__ import annotations

import threading
from pathlib import Path

from .config import GANConfig
from .errors import UnknownModel, shown
from .files import read_json
from .generator import DEFAULT_MODEL, RECORD_FILE, Generator, describe, shipped_models


class Library:
    """Name -> weights folder, each loaded once on first use and then cached (thread-safe)."""

    def __init__(self, folders: dict[str, Path] | None = None):
        folders = shipped_models() if folders is None else folders
        self._folders = dict(folders)
        self._sources = {name: "shipped" for name in folders}
        self._loaded: dict[str, Generator] = {}
        self._lock = threading.Lock()
        self.default = DEFAULT_MODEL if DEFAULT_MODEL in folders else next(iter(folders), None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._folders)

    def add(self, name: str, folder: str | Path, source: str) -> str:
        """Register a weights folder (a finished run, a pulled repo); loads it now so a bad folder fails here."""
        generator = Generator.load(folder, name=name)
        with self._lock:
            self._folders[name], self._sources[name], self._loaded[name] = Path(folder), source, generator
        return name

    def _check(self, name: str) -> None:
        if not isinstance(name, str) or name not in self._folders:  # callers hold the lock
            raise UnknownModel(f"unknown model {shown(name)}; choose one of: {', '.join(self._folders)}")

    def get(self, name: str) -> Generator:
        """The loaded generator called `name`."""
        with self._lock:
            self._check(name)
            if name not in self._loaded:  # under the lock: two requests never load the same model twice
                self._loaded[name] = Generator.load(self._folders[name], name=name)
            return self._loaded[name]

    def info(self, name: str) -> dict:
        """What a person (or a script) needs to pick a model; reads the folder, loads no weights."""
        with self._lock:
            self._check(name)
            folder, source = self._folders[name], self._sources[name]
        config, record = GANConfig.load(folder), read_json(folder / RECORD_FILE) or {}
        return {"name": name, "source": source, "description": describe(config),
                "architecture": config.architecture, "conditional": config.conditional,
                "latent_dim": config.latent_dim, "steps": record.get("steps"), "folder": str(folder)}
