"""One training run at a time, in a child process at lower priority, so the app stays responsive.

The parent (`TrainingWorker`) starts `python -m mnist_gan.worker --run-dir DIR [--data NPZ] [--resume]`, sends it one
command per line on stdin ("pause", "resume", "stop"; end of input means stop) and reads the Trainer's events
back as JSON lines on stdout. `RunState` folds those events into the run's state, which any number of
requests can read at any time: the run lives outside every request, so a page reload or a second tab sees
the same run. Sample grids stay on disk (the Trainer writes them into the run folder); only paths travel.
A run whose process died (killed, disk full, app restarted) is offered for resuming from its last checkpoint.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from .checkpoint import CHECKPOINT_FILE, CheckpointError, load_meta
from .config import ConfigError, GANConfig
from .files import read_json, write_json

ACTIVE = ("starting", "running", "pausing", "paused", "resuming", "stopping")
DONE = ("stopped", "finished", "failed")
NICENESS = 10  # the child yields the CPU to the app's requests
PLOT_POINTS = 300  # history rows per status: every tick ships them to every open tab
LOG_FILE = "worker.log"
RUN_FILE = "app_run.json"  # where the run's data came from, so a resumed run trains on the same images
LOCK_FILE = "worker.lock"  # held by the child: two processes never train the same run folder
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY")  # env vars the training child never needs
ROOT = Path(__file__).resolve().parent.parent


class WorkerBusy(RuntimeError):
    """A run is already in progress (or there is none to control); the message says which."""


class RunFolderError(RuntimeError):
    """The runs folder cannot be written (read-only, disk full...); the message says where and why."""


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

    def restore(self, meta: dict) -> None:
        """Start from a checkpoint's header: its step, history and incidents, and the grids drawn up to it."""
        step = meta["step"]
        samples = sorted((int(p.stem), str(p)) for p in (self.run_dir / "samples").glob("*.png") if p.stem.isdigit())
        with self._lock:
            self.step, self.saved_step = step, step
            self.history = [row for row in meta.get("history", []) if row["step"] <= step]
            self.incidents = list(meta.get("incidents", []))
            self.samples = [(s, path) for s, path in samples if s <= step]

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
        self._resumable = find_resumable(self.runs_dir)  # a run an earlier app left unfinished

    def status(self) -> dict:
        """The run's snapshot, plus `resumable`: the unfinished run "Resume run" would continue (or None)."""
        run = self.run
        resumable = None if run and run.active else self._resumable
        return {**(run.snapshot() if run else IDLE), "resumable": resumable}

    def start(self, config: GANConfig, data: str | Path | None, data_label: str) -> dict:
        """Start a run of `config` on MNIST from `data` (None: $MNIST_GAN_DATA or keras download)."""
        with self._lock:
            self._check_idle()
            name = self._new_name(config)
            run_dir = self.runs_dir / name
            data = str(Path(data).resolve()) if data else None
            with _writable(self.runs_dir):
                run_dir.mkdir(parents=True)
                config.save(run_dir)
                write_json(run_dir / RUN_FILE, {"data": data, "data_label": data_label})
            return self._launch(RunState(name, run_dir, config, data_label), data, resume=False)

    def resume_run(self) -> dict:
        """Continue the unfinished run (see `status()["resumable"]`) from its latest checkpoint."""
        with self._lock:
            self._check_idle()
            if self._resumable is None:
                raise WorkerBusy("no unfinished run to resume: every run in the runs folder finished, or none "
                                 "has saved a checkpoint yet")
            run_dir = Path(self._resumable["run_dir"])
            try:
                meta, config = load_meta(run_dir / CHECKPOINT_FILE), GANConfig.load(run_dir)
            except (CheckpointError, ConfigError, FileNotFoundError) as e:
                self._resumable = None
                raise WorkerBusy(f"cannot resume {run_dir.name}: {e}") from None
            source = read_json(run_dir / RUN_FILE) or {}
            run = RunState(run_dir.name, run_dir, config, source.get("data_label") or "MNIST")
            run.restore(meta)
            return self._launch(run, source.get("data"), resume=True)

    def _check_idle(self) -> None:
        if self.run and self.run.active:
            raise WorkerBusy(f"a training run is in progress ({self.run.name}, {self.run.state}, step "
                             f"{self.run.step} of {self.run.config.steps}): stop it before starting another")

    def _launch(self, run: RunState, data: str | None, resume: bool) -> dict:
        """Start the child for `run` (callers hold the lock)."""
        command = [sys.executable, "-m", "mnist_gan.worker", "--run-dir", str(run.run_dir)]
        command += ["--data", data] if data else []
        command += ["--resume"] if resume else []
        with _writable(run.run_dir), open(run.run_dir / LOG_FILE, "ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log, text=True, bufsize=1, env=child_env())
        self.run, self._process, self._resumable = run, process, None
        threading.Thread(target=self._follow, args=(process, run), daemon=True, name=f"worker-{run.name}").start()
        return self.status()

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
            return self.status()

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
        code = process.wait()
        if run is self.run:  # (an earlier run's process may end after the next run started)
            self._resumable = find_resumable(self.runs_dir)  # before the run shows as ended: both show at once
        run.ended(code)
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


def find_resumable(runs_dir: Path) -> dict | None:
    """The newest run folder with a checkpoint, when that run has not finished: what "Resume run" continues."""
    try:
        checkpoints = sorted(runs_dir.glob(f"*/{CHECKPOINT_FILE}"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return None
    if not checkpoints:
        return None
    run_dir = checkpoints[-1].parent
    try:
        step, steps = load_meta(checkpoints[-1])["step"], GANConfig.load(run_dir).steps
    except (CheckpointError, ConfigError, FileNotFoundError, KeyError):
        return None
    if step >= steps:
        return None
    label = (read_json(run_dir / RUN_FILE) or {}).get("data_label")
    return {"run": run_dir.name, "step": step, "steps": steps, "run_dir": str(run_dir), "data": label}


def child_env() -> dict[str, str]:
    """The app's environment without its secrets: the training child needs no token."""
    return {k: v for k, v in os.environ.items() if not any(word in k.upper() for word in SECRET_WORDS)}


@contextmanager
def _writable(folder: Path):
    """OSErrors while writing `folder` become a RunFolderError that says what to do."""
    try:
        yield
    except OSError as e:
        raise RunFolderError(disk_message(folder, e)) from None


def disk_message(folder: Path | str, error: OSError) -> str:
    """A plain sentence for a failed write: disk full and read-only folders say so."""
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
              errno.EFBIG: "the file is larger than this system allows", errno.EROFS: "the file system is read-only",
              errno.EACCES: "permission denied", errno.EPERM: "the folder may not be written"}.get(
        error.errno, error.strerror or type(error).__name__)
    return (f"cannot write the run folder {folder}: {reason}. Free some disk space or make the folder writable "
            "(or set MNIST_GAN_RUNS to another folder); the app keeps running")


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
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
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
        run_lock = _lock_run(Path(args.run_dir))
        config = GANConfig.load(args.run_dir)
        evaluator = None
        if config.eval_every:
            from .metrics import Evaluator

            evaluator = Evaluator()
        data = load_mnist(args.data)
        trainer = Trainer.resume_from(args.run_dir, data, evaluator) if args.resume else \
            Trainer(config, data, args.run_dir, evaluator)
    except Exception as e:  # bad data, missing classifier...: the message is for the person who pressed Start
        message = disk_message(args.run_dir, e) if isinstance(e, OSError) and e.errno else \
            str(e) if isinstance(e, WorkerBusy) else f"{type(e).__name__}: {e}"
        send({"event": "state", "state": "failed", "step": 0, "message": message})
        return 1
    trainer.subscribe(send)
    threading.Thread(target=_obey, args=(trainer,), daemon=True).start()
    try:
        trainer.run()
    except OSError as e:  # the trainer said "failed" with the raw error; say it in words, and what is kept
        saved = _saved_step(args.run_dir)
        kept = f". Its checkpoint of step {saved} is intact: resume the run once fixed" if saved is not None else ""
        send({"event": "state", "state": "failed", "step": trainer.step,
              "message": disk_message(args.run_dir, e) + kept})
        return 1
    except Exception:
        return 1  # the trainer has published the failure
    finally:
        run_lock.close()
    return 0


def _lock_run(run_dir: Path):
    """An exclusive lock on the run folder for this process's life (the OS drops it however the process ends)."""
    import fcntl

    lock = open(run_dir / LOCK_FILE, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise WorkerBusy(f"another process is still training {run_dir.name} (an earlier app's run finishing "
                         "its last save?); try again in a few seconds") from None
    return lock


def _saved_step(run_dir: str) -> int | None:
    try:
        return load_meta(Path(run_dir) / CHECKPOINT_FILE)["step"]
    except (CheckpointError, KeyError):
        return None


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
