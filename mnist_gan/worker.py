"""One training run at a time, in a child process at lower priority, so the app stays responsive.

The parent (`TrainingWorker`) starts `python -m mnist_gan.worker --run-dir DIR [--data NPZ]`, sends it one
command per line on stdin ("pause", "resume", "stop"; end of input means stop) and reads the Trainer's events
back as JSON lines on stdout. `RunState` folds those events into the run's state, which any number of
requests can read at any time: the run lives outside every request, so a page reload or a second tab sees
the same run. Sample grids stay on disk (the Trainer writes them into the run folder); only paths travel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .config import GANConfig

ACTIVE = ("starting", "running", "pausing", "paused", "resuming", "stopping")
DONE = ("stopped", "finished", "failed")
NICENESS = 10  # the child yields the CPU to the app's requests
PLOT_POINTS = 300  # history rows per status: every tick ships them to every open tab
LOG_FILE = "worker.log"
ROOT = Path(__file__).resolve().parent.parent


class WorkerBusy(RuntimeError):
    """A run is already in progress (or there is none to control); the message says which."""


def cadence(steps: int, evaluate: bool) -> dict:
    """sample_every / eval_every for a run of `steps`: about 40 grids, multiples of 10 so every compiled call
    does the same number of iterations (a different count would recompile)."""
    sample_every = min(500, max(10, steps // 40 // 10 * 10))
    return {"sample_every": sample_every, "eval_every": 5 * sample_every if evaluate else 0}


def downsample(rows: list, points: int = PLOT_POINTS) -> list:
    """At most about `points` evenly spaced rows, always keeping the last."""
    if len(rows) <= points:
        return list(rows)
    stride = math.ceil(len(rows) / points)
    return rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])


class RunState:
    """The parent's view of one run, built only from the child's events (thread-safe)."""

    def __init__(self, name: str, run_dir: Path, config: GANConfig, data: str):
        self.name, self.run_dir, self.config, self.data = name, run_dir, config, data
        self.state, self.message, self.step, self.eta_s = "starting", "", 0, None
        self.history: list[dict] = []  # one row per compiled call
        self.samples: list[tuple[int, str]] = []  # (step, png path)
        self.quality: list[dict] = []
        self.incidents: list[dict] = []
        self.saved_step: int | None = None  # the run folder holds weights of this step
        self.started, self.ended_at = time.time(), None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def apply(self, event: dict) -> None:
        """Fold one Trainer event in. A step no later than the last means the run rolled back: what it undid goes."""
        kind = event.get("event")
        with self._lock:
            step = event.get("step", self.step)
            if kind == "step":
                for rows, key in ((self.history, lambda r: r["step"]), (self.samples, lambda s: s[0]),
                                  (self.quality, lambda r: r["step"])):
                    while rows and key(rows[-1]) >= step:
                        rows.pop()
                self.history.append({k: v for k, v in event.items() if k not in ("event", "eta_s")})
                self.step, self.eta_s = step, event.get("eta_s")
                if self.state in ("starting", "resuming"):  # a pause cancelled by a resume never reports either
                    self.state = "running"
            elif kind == "samples" and event.get("path"):
                self.samples.append((step, event["path"]))
            elif kind == "quality":
                self.quality.append({k: v for k, v in event.items() if k != "event"})
            elif kind == "divergence":
                self.incidents.append({k: v for k, v in event.items() if k != "event"})
            elif kind == "checkpoint":
                self.saved_step = step
            elif kind == "state":
                self.state, self.message, self.step = event["state"], event.get("message", ""), step

    def expect(self, state: str) -> None:
        """Show a requested transition (e.g. "pausing") until the child confirms it."""
        with self._lock:
            self.state = state

    def ended(self, code: int) -> None:
        with self._lock:
            self.ended_at = time.time()
            if self.state not in DONE:
                self.state = "failed"
                self.message = (f"the training process exited (code {code}) before finishing; "
                                f"see {self.run_dir / LOG_FILE}")

    def snapshot(self, points: int = PLOT_POINTS) -> dict:
        """The run's state as plain JSON-able values."""
        with self._lock:
            last = self.history[-1] if self.history else {}
            histogram = next((q["class_histogram"] for q in reversed(self.quality) if "class_histogram" in q), None)
            return {
                "run": self.name, "state": self.state, "message": self.message, "step": self.step,
                "steps": self.config.steps, "progress": self.step / self.config.steps, "eta_s": self.eta_s,
                **{k: last.get(k) for k in ("d_acc_real", "d_acc_fake", "d_loss", "g_loss", "images_per_sec")},
                "history": downsample(self.history, points),
                "quality": [{k: v for k, v in q.items() if k != "class_histogram"} for q in self.quality],
                "class_histogram": histogram, "sample_steps": [s for s, _ in self.samples],
                "incidents": list(self.incidents), "saved_step": self.saved_step, "run_dir": str(self.run_dir),
                "data": self.data, "config": self.config.to_dict(), "wall_s": round((self.ended_at or time.time()) - self.started, 1),
            }

    def sample_paths(self) -> list[tuple[int, str]]:
        """(step, png path) of every sample grid so far."""
        with self._lock:
            return list(self.samples)


IDLE = {"run": None, "state": "idle", "message": "no run yet", "step": 0, "steps": 0, "progress": 0.0,
        "eta_s": None, "d_acc_real": None, "d_acc_fake": None, "d_loss": None, "g_loss": None,
        "images_per_sec": None, "history": [], "quality": [], "class_histogram": None, "sample_steps": [],
        "incidents": [], "saved_step": None, "run_dir": None, "data": None, "config": None, "wall_s": 0.0}


class TrainingWorker:
    """Starts and controls the one training run; its state is readable from any thread."""

    def __init__(self, runs_dir: str | Path, on_done: Callable[[RunState], None] | None = None):
        self.runs_dir = Path(runs_dir).resolve()
        self.on_done = on_done  # called with the RunState once its process has exited
        self.run: RunState | None = None
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def status(self) -> dict:
        run = self.run
        return run.snapshot() if run else dict(IDLE)

    def start(self, config: GANConfig, data: str | Path | None, data_label: str) -> dict:
        """Start a run of `config` on MNIST from `data` (None: $MNIST_GAN_DATA or keras download)."""
        with self._lock:
            if self.run and self.run.active:
                raise WorkerBusy(f"a training run is in progress ({self.run.name}, {self.run.state}, step "
                                 f"{self.run.step} of {self.run.config.steps}): stop it before starting another")
            name = self._new_name(config)
            run_dir = self.runs_dir / name
            run_dir.mkdir(parents=True)
            config.save(run_dir)
            command = [sys.executable, "-m", "mnist_gan.worker", "--run-dir", str(run_dir)]
            if data:
                command += ["--data", str(Path(data).resolve())]
            with open(run_dir / LOG_FILE, "wb") as log:
                process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=log, text=True, bufsize=1)
            self.run, self._process = RunState(name, run_dir, config, data_label), process
            threading.Thread(target=self._follow, args=(process, self.run), daemon=True,
                             name=f"worker-{name}").start()
            return self.run.snapshot()

    def pause(self) -> dict:
        return self._command("pause", ("starting", "running", "resuming"), "pausing")

    def resume(self) -> dict:
        return self._command("resume", ("paused", "pausing"), "resuming")

    def stop(self) -> dict:
        return self._command("stop", ACTIVE, "stopping")

    def _command(self, command: str, allowed: tuple[str, ...], expect: str) -> dict:
        with self._lock:
            run = self.run
            if run is None or run.state not in allowed:
                state = run.state if run else "idle"
                raise WorkerBusy(f"cannot {command}: the run is {state}" if run else f"cannot {command}: no run yet")
            try:
                self._process.stdin.write(command + "\n")
                self._process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise WorkerBusy(f"cannot {command}: the training process has ended") from None
            run.expect(expect)
            return run.snapshot()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the run (it saves its weights) and wait for the child; kill it after `timeout` seconds."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            process.stdin.close()  # end of input: the child stops and saves
        except OSError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def _follow(self, process: subprocess.Popen, run: RunState) -> None:
        for line in process.stdout:  # ends when the child exits
            try:
                run.apply(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # not an event line
        run.ended(process.wait())
        if self.on_done:
            try:
                self.on_done(run)
            except Exception as e:  # e.g. the saved weights do not load: say so where the run is watched
                run.apply({"event": "state", "state": run.state, "step": run.step,
                           "message": f"{run.message} (could not use its weights: {e})".strip()})

    def _new_name(self, config: GANConfig) -> str:
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.architecture}{'-conditional' if config.conditional else ''}"
        name, n = base, 1
        while (self.runs_dir / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def grid(self, index: int) -> tuple[int, np.ndarray] | None:
        """(step, uint8 grid) of the index-th sample grid of the current run (negative counts from the end)."""
        samples = self.run.sample_paths() if self.run else []
        if not samples:
            return None
        step, path = samples[max(-len(samples), min(index, len(samples) - 1))]
        return step, _read_png(path)

    def grids(self, limit: int = 100) -> list[np.ndarray]:
        """Up to `limit` of the run's sample grids, evenly spaced, first and last included."""
        samples = self.run.sample_paths() if self.run else []
        return [_read_png(path) for _, path in downsample(samples, limit)]


def _read_png(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


# --- the child process ----------------------------------------------------------------------------------------

def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_gan.worker", description=__doc__)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--data", help="MNIST .npz; default $MNIST_GAN_DATA or keras.datasets download")
    args = parser.parse_args(argv)
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    # Events go to the original stdout; anything else printing to stdout (Keras, TF) lands in the log instead.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    lock = threading.Lock()

    def send(event: dict) -> None:
        with lock:
            events.write(json.dumps({k: v for k, v in event.items() if k != "grid"}, default=_jsonable) + "\n")

    from .data import load_mnist
    from .trainer import Trainer

    try:
        config = GANConfig.load(args.run_dir)
        evaluator = None
        if config.eval_every:
            from .metrics import Evaluator

            evaluator = Evaluator()
        trainer = Trainer(config, load_mnist(args.data), args.run_dir, evaluator)
    except Exception as e:  # bad data, missing classifier...: the message is for the person who pressed Start
        send({"event": "state", "state": "failed", "step": 0, "message": f"{type(e).__name__}: {e}"})
        return 1
    trainer.subscribe(send)
    threading.Thread(target=_obey, args=(trainer,), daemon=True).start()
    try:
        trainer.run()
    except Exception:
        return 1  # the trainer has published the failure
    return 0


def _obey(trainer) -> None:
    """Apply the parent's commands; end of input (the parent went away) stops the run, which saves it."""
    actions = {"pause": trainer.pause, "resume": trainer.resume, "stop": trainer.stop}
    for line in sys.stdin:
        action = actions.get(line.strip())
        if action:
            action()
    trainer.stop()


if __name__ == "__main__":
    sys.exit(main())
