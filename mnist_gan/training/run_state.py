"""A run as the app sees it: the events of its training process folded into one status.

`RunView` receives every event of one run (from any thread) and answers `status()` at any time; `RunStatus` is that
answer, frozen, with `to_json()` for the API. A page reload or a second tab reads the same status.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mnist_gan.config import GANConfig
from mnist_gan.run_folder import LOG_FILE, atlas_paths, sample_paths

from .events import (
    Alarm,
    AtlasDrawn,
    Checkpoint,
    Divergence,
    Edited,
    Event,
    Inspected,
    Quality,
    Samples,
    State,
    StateChanged,
    Step,
)

PLOT_POINTS = 300  # history rows per status: every poll ships them to every open tab
INSPECTIONS = 20  # steps by hand kept in the status (newest last)
HIDDEN = ("class_histogram", "duplicate_pairs")  # quality row fields the status leaves out (big, or for the alarm)


def downsample(rows: list, points: int = PLOT_POINTS) -> list:
    """At most about `points` evenly spaced rows, always keeping the last."""
    if len(rows) <= points:
        return list(rows)
    stride = math.ceil(len(rows) / points)
    return rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])


@dataclass(frozen=True)
class RunStatus:
    """Everything the Train tab and train_status show of the current run (or of none)."""

    run: str | None
    state: State
    message: str
    step: int
    steps: int
    progress: float  # step / steps
    eta_s: float | None
    d_acc_real: float | None
    d_acc_fake: float | None
    d_loss: float | None
    g_loss: float | None
    images_per_sec: float | None
    history: list[dict]  # Step rows, downsampled to about PLOT_POINTS
    quality: list[dict]  # Quality rows (step + metrics), class histograms left out
    class_histogram: list[float] | None  # of the latest evaluation
    sample_steps: list[int]  # the steps that have a sample grid
    incidents: list[dict]  # divergences: step, reason, action
    saved_step: int | None  # the run folder holds weights of this step
    run_dir: str | None  # a server path: for the package and the logs, never in to_json
    data: str | None  # what the run trains on, in words
    config: dict | None
    wall_s: float
    resumable_runs: list[dict] = field(default_factory=list)  # unfinished runs (run, step, steps, data), newest first
    edits: list[dict] = field(default_factory=list)  # live edits: step, changes, before
    inspections: list[dict] = field(default_factory=list)  # steps taken by hand: step, kind, summary (newest last)
    atlas_steps: list[int] = field(default_factory=list)  # the steps that have a latent atlas
    alarms: list[dict] = field(default_factory=list)  # collapse alarms: step, kind, message, remedy, fork_step
    origin: dict = field(default_factory=dict)  # a fork's parent: run, step

    @property
    def resumable(self) -> dict | None:
        """The unfinished run "Resume run" continues unless told which: the newest."""
        return self.resumable_runs[0] if self.resumable_runs else None

    @classmethod
    def idle(cls, resumable: list[dict] | None = None) -> RunStatus:
        """Before any run."""
        return cls(run=None, state=State.IDLE, message="no run yet", step=0, steps=0, progress=0.0, eta_s=None,
                   d_acc_real=None, d_acc_fake=None, d_loss=None, g_loss=None, images_per_sec=None, history=[],
                   quality=[], class_histogram=None, sample_steps=[], incidents=[], saved_step=None, run_dir=None,
                   data=None, config=None, wall_s=0.0, resumable_runs=list(resumable or []))

    def to_json(self) -> dict:
        """Plain JSON values, as the API returns them (no server path: visitors read it)."""
        values = {k: v for k, v in asdict(self).items() if k != "run_dir"}
        return {**values, "state": self.state.value, "resumable": self.resumable}


class RunView:
    """One run, built only from its events (thread-safe)."""

    def __init__(self, name: str, run_dir: Path, config: GANConfig, data: str):
        self.name, self.run_dir, self.config, self.data = name, run_dir, config, data
        self.state, self.message, self.step, self.eta_s = State.STARTING, "", 0, None
        self.history: list[dict] = []  # one row per compiled call
        self.samples: list[tuple[int, str]] = []  # (step, png path)
        self.quality: list[dict] = []
        self.incidents: list[dict] = []
        self.edits: list[dict] = []
        self.inspections: list[dict] = []
        self.atlas: list[tuple[int, str]] = []  # (step, npz path)
        self.alarms: list[dict] = []
        self.origin: dict = {}
        self.saved_step: int | None = None
        self.started, self.ended_at = time.time(), None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.state.active

    def restore(self, meta: dict) -> None:
        """Start from a checkpoint's header: its step, history and incidents, and the grids drawn up to it."""
        step = meta.step
        samples, atlas = sample_paths(self.run_dir), atlas_paths(self.run_dir)
        with self._lock:
            self.step, self.saved_step = step, step
            self.history = [row for row in meta.history if row["step"] <= step]
            self.quality = [row for row in meta.quality if row["step"] <= step]
            self.incidents = list(meta.incidents)
            self.edits = list(meta.edits)
            self.alarms = [a for a in meta.alarms if a["step"] <= step]
            self.origin = dict(meta.origin)
            self.samples = [(s, path) for s, path in samples if s <= step]
            self.atlas = [(s, path) for s, path in atlas if s <= step]

    def apply(self, event: Event) -> None:
        """Fold one event in. A Step no later than the last means the run rolled back: what it undid goes."""
        with self._lock:
            match event:
                case Step():
                    for rows, key in ((self.history, lambda r: r["step"]), (self.samples, lambda s: s[0]),
                                      (self.quality, lambda r: r["step"]), (self.atlas, lambda a: a[0])):
                        while rows and key(rows[-1]) >= event.step:
                            rows.pop()
                    self.history.append(event.row())
                    self.step, self.eta_s = event.step, event.eta_s
                    if self.state in (State.STARTING, State.RESUMING):  # a pause cancelled by a resume reports neither
                        self.state = State.RUNNING
                case Samples(path=path) if path:
                    self.samples.append((event.step, path))
                case Quality():
                    self.quality.append({"step": event.step, **event.metrics})
                case Divergence():
                    self.incidents.append({"step": event.step, "reason": event.reason, "action": event.action})
                case Checkpoint():
                    self.saved_step = event.step
                case Edited():
                    self.edits.append({"step": event.step, "changes": event.changes, "before": event.before})
                    self.config = self.config.replace(**event.changes)
                case Inspected():
                    self.inspections.append({"step": event.step, "kind": event.kind, "summary": event.summary,
                                             "path": event.path})
                    del self.inspections[:-INSPECTIONS]
                case AtlasDrawn():
                    self.atlas.append((event.step, event.path))
                case Alarm():
                    self.alarms.append({"step": event.step, "kind": event.kind, "message": event.message,
                                        "remedy": event.remedy, "fork_step": event.fork_step,
                                        "evidence": event.evidence, "path": event.path})
                case StateChanged():
                    self.state, self.message, self.step = event.state, event.message, event.step

    def expect(self, state: State) -> None:
        """Show a requested transition (e.g. PAUSING) until the process confirms it."""
        with self._lock:
            self.state = state

    def note(self, message: str) -> None:
        """Add to the run's message (e.g. what happened to its weights after the process ended)."""
        with self._lock:
            self.message = f"{self.message} ({message})" if self.message else message

    def ended(self, code: int) -> None:
        with self._lock:
            self.ended_at = time.time()
            if not self.state.done:
                self.state = State.FAILED
                self.message = (f"the training process exited (code {code}) before finishing; see the run's "
                                f"{LOG_FILE}")

    def status(self, resumable: list[dict] | None = None, points: int = PLOT_POINTS) -> RunStatus:
        with self._lock:
            last = self.history[-1] if self.history else {}
            histogram = next((q["class_histogram"] for q in reversed(self.quality) if "class_histogram" in q), None)
            return RunStatus(
                run=self.name, state=self.state, message=self.message, step=self.step, steps=self.config.steps,
                progress=self.step / self.config.steps, eta_s=self.eta_s,
                **{k: last.get(k) for k in ("d_acc_real", "d_acc_fake", "d_loss", "g_loss", "images_per_sec")},
                history=downsample(self.history, points),
                quality=[{k: v for k, v in q.items() if k not in HIDDEN} for q in self.quality],
                class_histogram=histogram, sample_steps=[s for s, _ in self.samples], incidents=list(self.incidents),
                saved_step=self.saved_step, run_dir=str(self.run_dir), data=self.data, config=self.config.to_dict(),
                wall_s=round((self.ended_at or time.time()) - self.started, 1), resumable_runs=list(resumable or []),
                edits=list(self.edits), atlas_steps=[s for s, _ in self.atlas], origin=dict(self.origin),
                inspections=[{k: v for k, v in i.items() if k != "path"} for i in self.inspections],
                alarms=[{k: v for k, v in a.items() if k != "path"} for a in self.alarms])

    def sample_paths(self) -> list[tuple[int, str]]:
        """(step, png path) of every sample grid so far."""
        with self._lock:
            return list(self.samples)

    def atlas_paths(self) -> list[tuple[int, str]]:
        """(step, npz path) of every latent atlas so far."""
        with self._lock:
            return list(self.atlas)

    def evidence(self, kind: str) -> tuple[dict, str | None]:
        """The newest step by hand (kind "inspection") or alarm ("alarm"), and its evidence file."""
        with self._lock:
            items = self.inspections if kind == "inspection" else self.alarms
            if not items:
                return {}, None
            return {k: v for k, v in items[-1].items() if k != "path"}, items[-1].get("path")

