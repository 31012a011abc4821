"""What a training run says while it trains: typed events, the run's states, and their one JSON form.

The Trainer publishes these; the training child sends them to the app as JSON lines; `run_state` folds them into
the run's status. Every layer reads fields, never string keys.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import Enum

import numpy as np


class State(str, Enum):
    """A run's state; a str, so it compares and serialises as its name ("running")."""

    IDLE = "idle"  # no run yet
    STARTING = "starting"  # the process is starting, no step yet
    RUNNING = "running"
    PAUSING = "pausing"  # asked to pause, not yet confirmed by the process
    PAUSED = "paused"
    RESUMING = "resuming"
    STOPPING = "stopping"
    STOPPED = "stopped"  # stopped before its last step; its weights are saved
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """A process is (or is about to be) training: no other run may start."""
        return self in _ACTIVE

    @property
    def done(self) -> bool:
        """The run's process has ended."""
        return self in (State.STOPPED, State.FINISHED, State.FAILED)

    @property
    def can_pause(self) -> bool:
        return self in (State.STARTING, State.RUNNING, State.RESUMING)

    @property
    def can_resume(self) -> bool:
        return self in (State.PAUSED, State.PAUSING)

    def __str__(self) -> str:
        return self.value


_ACTIVE = (State.STARTING, State.RUNNING, State.PAUSING, State.PAUSED, State.RESUMING, State.STOPPING)


@dataclass(frozen=True)
class Step:
    """The mean metrics of the iterations since the last Step (one compiled call)."""

    step: int
    d_loss_real: float | None  # None: no D update in this step (a G step taken by hand)
    d_loss_fake: float | None  # with a latent code, it includes the code's cross-entropy
    g_loss: float | None  # None: no G update (a D step taken by hand)
    d_acc_real: float | None  # share of real images D calls real
    d_acc_fake: float | None  # share of generated images D calls generated
    d_loss: float | None
    images_per_sec: float
    eta_s: float | None = None
    manual: str | None = None  # a step taken by hand while paused: d, g, iteration or 10

    def row(self) -> dict:
        """The run history's row for this step (the ETA is a moment's estimate, not history)."""
        return {k: v for k, v in asdict(self).items() if k != "eta_s" and not (k == "manual" and v is None)}


@dataclass(frozen=True)
class Samples:
    """A fixed-noise sample grid was drawn (and saved at `path` when the run has a folder)."""

    step: int
    path: str | None
    grid: np.ndarray | None = field(default=None, compare=False, repr=False)  # in process only, never sent


@dataclass(frozen=True)
class Quality:
    """The classifier's judgement of fresh samples (cfid, recognisable, class_histogram...)."""

    step: int
    metrics: dict


@dataclass(frozen=True)
class Checkpoint:
    """The run's whole state was saved; the run folder holds weights of this step."""

    step: int
    path: str


@dataclass(frozen=True)
class Divergence:
    """The run went wrong at `step`; `action` says what was done (rolled back, paused)."""

    step: int
    reason: str
    action: str


@dataclass(frozen=True)
class Edited:
    """A live edit took effect at `step`: `changes` (field -> new value), `before` (field -> old value)."""

    step: int
    changes: dict
    before: dict


@dataclass(frozen=True)
class Inspected:
    """A step taken by hand while paused (kind: d, g, iteration or 10), with what it did: numbers in `summary`,
    images in the .npz at `path`."""

    step: int
    kind: str
    path: str | None
    summary: dict


@dataclass(frozen=True)
class AtlasDrawn:
    """The latent atlas (a fixed 2-D slice of z, tiled with samples, D's scores and the judge's digits) at `step`."""

    step: int
    path: str


@dataclass(frozen=True)
class Alarm:
    """A run going wrong in a way that does not stop it (collapse, a dominating D): the evidence, and a remedy
    to try as a fork from `fork_step` with `remedy` (changes)."""

    step: int
    kind: str
    message: str
    evidence: dict
    path: str | None
    remedy: dict
    fork_step: int | None


@dataclass(frozen=True)
class StateChanged:
    state: State
    step: int
    message: str = ""


Event = Step | Samples | Quality | Checkpoint | Divergence | Edited | Inspected | AtlasDrawn | Alarm | StateChanged
KINDS = {"step": Step, "samples": Samples, "quality": Quality, "checkpoint": Checkpoint, "divergence": Divergence,
         "edited": Edited, "inspected": Inspected, "atlas": AtlasDrawn, "alarm": Alarm, "state": StateChanged}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def to_json(event: Event) -> str:
    """One line of JSON: {"event": kind, ...fields} (a Samples grid stays behind: only its path travels)."""
    values = {f.name: getattr(event, f.name) for f in fields(event) if f.name != "grid"}
    return json.dumps({"event": _KIND_OF[type(event)], **values}, default=_plain)


def from_json(line: str) -> Event:
    """The event a to_json line holds; ValueError for anything else (a stray line of output)."""
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("event") not in KINDS:
        raise ValueError("not an event line")
    cls = KINDS[data.pop("event")]
    try:
        event = cls(**data)
    except TypeError as e:
        raise ValueError(f"malformed {cls.__name__} event: {e}") from None
    return StateChanged(State(event.state), event.step, event.message) if cls is StateChanged else event


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
