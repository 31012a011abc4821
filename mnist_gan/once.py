"""Work that is slow and the same for everyone, done once however many callers ask at the same time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class OncePerKey:
    """get(key, build): build() at most once per key; concurrent callers of a key wait for the first one's result.
    The newest `size` results are kept (None: all), the least recently used dropped first."""

    def __init__(self, size: int | None = None):
        self.size = size
        self._results: OrderedDict = OrderedDict()
        self._building: dict = {}
        self._lock = threading.Lock()

    def get(self, key, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
            lock = self._building.setdefault(key, threading.Lock())
        with lock:  # the first caller builds; the others wait here for its result
            with self._lock:
                if key in self._results:
                    return self._results[key]
            result = build()
            with self._lock:
                self._results[key] = result
                while self.size is not None and len(self._results) > self.size:
                    self._results.popitem(last=False)
                self._building.pop(key, None)
            return result


class Lazy(Generic[T]):
    """A value built on first use, once (the shipped classifier: loaded by whichever feature needs it first)."""

    def __init__(self, build: Callable[[], T]):
        self._once, self._build = OncePerKey(), build

    def __call__(self) -> T:
        return self._once.get(None, self._build)
