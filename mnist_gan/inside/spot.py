"""Spot the fake: rounds kept on the server until answered, and each model's human fooled-rate on disk.

A round is 16 images, a random half real and half the model's; which is which never leaves the server until the
visitor answers (an answer takes the round away: one answer per round). Rounds are bounded in number and age, per
page and per address: a script that deals thousands of rounds pushes out its own, never another visitor's, and a
class behind one school's NAT (one address, many pages) keeps each page's rounds.

What leaves the server says nothing about the answer but the digits' shapes, which are the game: every image,
real or generated, is drawn again from its shape alone (`render`: moved by the same random shift, cut at half
ink, edges softened by one fixed filter), so no pixel statistic (MNIST's exact zeros and 255s, a generator's
faint speckle) tells them apart, and each image reaches the page under a name of its own (ui/inside.py), never
one derived from its content. And a judgement counts towards a model's fooled-rate only when a person could
have made it: answered no sooner than MIN_ANSWER_S after the round was dealt, and at most COUNTED_PER_HOUR rounds
per address an hour (a script answering in a loop once moved a rate from 14% to 95%).

The tally is one JSON line per answered round, appended under an exclusive lock on a separate lock file (so it
survives restarts and concurrent visitors, in one process or several). When the file passes `max_bytes` it is
rewritten, under the same lock, as one summed line per model: the totals stay exact and the file stays small.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_gan.atomic_files import atomic_write
from mnist_gan.errors import InvalidInput, shown

ROUND_SIZE = 16
MAX_ROUNDS = 2_000  # unanswered rounds kept, oldest dropped first (each is 16 booleans and a name)
ROUNDS_PER_PAGE = 4  # a page's unanswered rounds: a new one pushes out its own oldest
ROUNDS_PER_ADDRESS = 240  # an address's, all its pages together: a class of 50 behind one NAT, 4 each and more
MIN_ANSWER_S = 3.0  # a person needs seconds to look at 16 digits; a faster answer is a script's
COUNTED_PER_HOUR = 10  # rounds an address may add to the tally in an hour (answering more is fine: not counted)
SHIFT = 2  # pixels a round's images move, each by its own random amount (MNIST's digits keep a 4-pixel margin)
ROUND_AGE_S = 3_600.0
MAX_TALLY_BYTES = 256 * 1024
Z95 = 1.959964  # the standard normal's 97.5th percentile
COUNTS = ("fakes", "fooled", "reals", "false_alarms")


class RoundGone(InvalidInput):
    """The round is unknown, expired or answered already."""


@dataclass(frozen=True)
class Round:
    model: str
    fake: np.ndarray  # bool (16,): True where the image is the model's
    created: float
    visitor: str = ""  # who was dealt it (their client address)
    page: str = ""  # and in which page (a session of theirs)


def layout(rng: np.random.Generator, size: int = ROUND_SIZE) -> np.ndarray:
    """Which positions hold fakes: exactly half, in a random order (bool (size,))."""
    return rng.permutation(np.arange(size) < size // 2)


class Rounds:
    """Unanswered rounds by id, at most `max_rounds` (`per_page` for each page, `per_address` for each address),
    none older than `max_age_s`, and each address's counted judgements over the last hour (thread-safe)."""

    def __init__(self, max_rounds: int = MAX_ROUNDS, max_age_s: float = ROUND_AGE_S, clock=time.monotonic,
                 per_page: int = ROUNDS_PER_PAGE, per_address: int = ROUNDS_PER_ADDRESS,
                 counted_per_hour: int = COUNTED_PER_HOUR):
        self.max_rounds, self.max_age_s, self.clock = max_rounds, max_age_s, clock
        self.per_page, self.per_address, self.counted_per_hour = per_page, per_address, counted_per_hour
        self._rounds: OrderedDict[str, Round] = OrderedDict()
        self._counted: OrderedDict[str, list[float]] = OrderedDict()  # visitor -> times; least recent first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rounds)

    def add(self, model: str, fake: np.ndarray, visitor: str = "", page: str = "") -> str:
        """Keep a round dealt to `visitor` (an address) in `page`; its id is unguessable (128 random bits)."""
        round_id = secrets.token_urlsafe(16)
        with self._lock:
            self._expire()
            theirs = [key for key, kept in self._rounds.items() if kept.visitor == visitor]
            in_page = [key for key in theirs if self._rounds[key].page == page]
            # the page's oldest, then the address's: a script's thousands of rounds push out only its own
            for keys, cap in ((in_page, self.per_page), (theirs, self.per_address)):
                for key in keys[:max(0, len(keys) - cap + 1)]:
                    self._rounds.pop(key, None)
            self._rounds[round_id] = Round(model, np.array(fake, bool), self.clock(), visitor, page)
            while len(self._rounds) > self.max_rounds:
                self._rounds.popitem(last=False)
        return round_id

    def take(self, round_id) -> Round:
        """The round, removed: it can be answered once."""
        if not isinstance(round_id, str) or len(round_id) > 64:
            raise RoundGone(f"round must be the id a new round returned, got {shown(round_id)}")
        with self._lock:
            self._expire()
            found = self._rounds.pop(round_id, None)
        if found is None:
            raise RoundGone("this round has expired or was answered already: start a new round")
        return found

    def count(self, found: Round) -> str | None:
        """Whether an answer to `found` joins the tally now: None when it does (and it is counted), else why not."""
        now = self.clock()
        if now - found.created < MIN_ANSWER_S:
            return f"answered within {MIN_ANSWER_S:g} s of the round"
        with self._lock:
            while self._counted and now - next(iter(self._counted.values()))[-1] > 3_600:
                self._counted.popitem(last=False)  # visitors idle for an hour: forgotten, oldest first
            times = [t for t in self._counted.pop(found.visitor, []) if now - t <= 3_600]
            counted = len(times) < self.counted_per_hour
            if counted:
                times.append(now)
            self._counted[found.visitor] = times
        return None if counted else f"more than {self.counted_per_hour} rounds from your address in an hour"

    def _expire(self) -> None:
        cutoff = self.clock() - self.max_age_s
        while self._rounds and next(iter(self._rounds.values())).created < cutoff:
            self._rounds.popitem(last=False)


def render(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Digits drawn again from their shapes alone, as every round's images are served: each moved by a random
    whole shift of up to SHIFT pixels (with zeros coming in), cut at half ink, and softened by one fixed 3x3 filter.
    uint8 (n, 28, 28) in, uint8 out: two digits with one shape come out byte for byte the same."""
    ink = np.pad(np.asarray(images, np.uint8) >= 128, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT)))
    shapes = np.empty(ink.shape[:1] + (28, 28), np.float32)
    for i, (dy, dx) in enumerate(rng.integers(0, 2 * SHIFT + 1, (len(ink), 2))):
        shapes[i] = ink[i, dy:dy + 28, dx:dx + 28]
    kernel = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    padded = np.pad(shapes, ((0, 0), (1, 1), (1, 1)))
    soft = sum(kernel[y, x] * padded[:, y:y + 28, x:x + 28] for y in range(3) for x in range(3))
    return np.round(soft * 255).astype(np.uint8)


def marked_positions(marked, size: int = ROUND_SIZE) -> np.ndarray:
    """The visitor's marks (the numbers 1-16 of the images they think are fake) as bool (size,)."""
    if marked is None:
        marked = []
    if not isinstance(marked, (list, tuple)) or len(marked) > size:
        raise InvalidInput(f"marked must be a list of image numbers 1-{size}, got {shown(marked)}")
    numbers = []
    for m in marked:
        number = int(m) if isinstance(m, str) and m.strip().isascii() and m.strip().isdigit() else m
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= size:
            raise InvalidInput(f"marked must be a list of image numbers 1-{size}, got {shown(marked)}")
        numbers.append(number)
    out = np.zeros(size, bool)
    out[np.array(numbers, int) - 1] = True
    return out


def judge(fake: np.ndarray, marked: np.ndarray) -> dict:
    """A round's outcome: fakes marked real fooled the visitor; reals marked fake are false alarms."""
    fake, marked = np.asarray(fake, bool), np.asarray(marked, bool)
    return {"fakes": int(fake.sum()), "fooled": int((fake & ~marked).sum()), "reals": int((~fake).sum()),
            "false_alarms": int((~fake & marked).sum())}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion k/n (95% by default); None when n is 0."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class FooledTally:
    """Each model's spot-the-fake record in an append-only JSON-lines file, bounded by compaction."""

    def __init__(self, path: str | Path, max_bytes: int = MAX_TALLY_BYTES):
        self.path, self.max_bytes = Path(path), max_bytes
        self._cache: tuple[tuple, dict] | None = None

    @contextmanager
    def _locked(self, kind: int):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, kind)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, model: str, outcome: dict) -> None:
        """Append one round's outcome (judge()'s counts) for `model`."""
        line = json.dumps({"model": model, **{k: int(outcome[k]) for k in COUNTS}}) + "\n"
        with self._locked(fcntl.LOCK_EX):
            with open(self.path, "a+b") as f:  # one write() of a short line in append mode: never interleaved
                if f.tell() and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n":
                    line = "\n" + line  # after a torn line (a machine killed mid-write): start a fresh one
                f.write(line.encode())
            if self.path.stat().st_size > self.max_bytes:
                self._compact()

    def _compact(self) -> None:
        totals = self._read()
        text = "".join(json.dumps({"model": model, **counts}) + "\n" for model, counts in totals.items())
        atomic_write(self.path, text.encode())

    def _read(self) -> dict[str, dict]:
        totals: dict[str, dict] = {}
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return totals
        for line in lines:
            try:
                row = json.loads(line)
                counts = {k: int(row[k]) for k in COUNTS}
                model = str(row["model"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn line (the machine died mid-write): the others still count
            mine = totals.setdefault(model, dict.fromkeys(COUNTS, 0))
            for k in COUNTS:
                mine[k] += counts[k]
        return totals

    def totals(self) -> dict[str, dict]:
        """Summed counts per model, read from the file (cached until the file changes)."""
        with self._locked(fcntl.LOCK_SH):
            try:
                stat = self.path.stat()
                key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            except FileNotFoundError:
                return {}
            if self._cache is None or self._cache[0] != key:
                self._cache = (key, self._read())
            return {model: dict(counts) for model, counts in self._cache[1].items()}

    def record(self, model: str) -> dict:
        """`model`'s fooled-rate: the share of its fakes visitors marked real, with a 95% Wilson interval."""
        counts = self.totals().get(model, dict.fromkeys(COUNTS, 0))
        n, k = counts["fakes"], counts["fooled"]
        interval = wilson(k, n)
        return {"model": model, "judgements": n, "fooled": k, "fooled_rate": k / n if n else None,
                "interval_95": list(interval) if interval else None, "interval": "Wilson score, 95%",
                "false_alarms": counts["false_alarms"], "reals": counts["reals"]}


def tally_path(runs_dir: str | Path) -> Path:
    """Where the app keeps the tally: $MNIST_GAN_SPOT_FILE, else beside the runs (a persistent folder)."""
    return Path(os.environ.get("MNIST_GAN_SPOT_FILE") or Path(runs_dir) / "spot-the-fake.jsonl")
