"""One training run at a time, in a child process at lower priority, so the app stays responsive: the parent side.

`TrainingWorker` starts `python -m mnist_gan.training.child --run-dir DIR [--data NPZ] [--resume]`, sends it one
command per line on stdin ("pause", "resume", "stop", or JSON: {"take": kind}, {"edit": {field: value}}; end of
input means stop) and reads its events back as JSON lines on stdout into a `RunView`, which any number of requests can read at any time: the run lives outside every
request. Sample grids stay on disk (the trainer writes them into the run folder); only paths travel.
A run whose process died (killed, disk full, app restarted) is offered for resuming from its last checkpoint.
The runs folder is bounded: before a run starts, the oldest runs beyond a count or a disk budget are deleted
(never the active run, nor the newest one that can be resumed).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan.atomic_files import read_json, write_json
from mnist_gan.config import GANConfig, live_edit
from mnist_gan.errors import Busy, InvalidInput, MnistGanError, RunFolderError, log, shown
from mnist_gan.run_folder import CHECKPOINT_FILE, LOG_FILE, SOURCE_FILE

from .checkpoint import load_checkpoint, load_meta, save_checkpoint, step_checkpoints
from .events import State, from_json
from .manual_steps import KINDS
from .run_state import RunStatus, RunView, downsample

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY")  # env vars the training child never needs
ROOT = Path(__file__).resolve().parents[2]
MAX_RUNS, MAX_RUNS_BYTES = 20, 2 << 30  # a stopped run folder is ~30 MB (checkpoint with optimizer state, grids)


class TrainingWorker:
    """Starts and controls the one training run; its status is readable from any thread."""

    def __init__(self, runs_dir: str | Path, on_done: Callable[[RunView], None] | None = None,
                 on_pruned: Callable[[list[str]], None] | None = None, max_runs: int = MAX_RUNS,
                 max_bytes: int = MAX_RUNS_BYTES):
        self.runs_dir = Path(runs_dir).resolve()
        self.on_done = on_done  # called with the run once its process has exited
        self.on_pruned = on_pruned  # called with the names of the run folders pruning deleted
        self.max_runs, self.max_bytes = max_runs, max_bytes
        self.run: RunView | None = None
        self.version = 0  # grows whenever what status() shows may have changed: pages look at it to stay current
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._resumable = find_resumable(self.runs_dir)  # runs an earlier app left unfinished, newest first

    def status(self) -> RunStatus:
        """The run's status, with `resumable`: the unfinished runs "Resume run" can continue, newest first."""
        run = self.run
        # until its process has ended, the list is the one from before this run (it is refreshed as it ends)
        resumable = [] if run and (run.active or run.ended_at is None) else self._resumable
        return run.status(resumable) if run else RunStatus.idle(resumable)

    def start(self, config: GANConfig, data: str | Path | None, data_label: str) -> RunStatus:
        """Start a run of `config` on MNIST from `data` (None: $MNIST_GAN_DATA or keras download)."""
        with self._lock:
            self._check_idle()
            self._prune()
            name = self._new_name(config)
            run_dir = self.runs_dir / name
            data = str(Path(data).resolve()) if data else None
            with _writable(self.runs_dir):
                run_dir.mkdir(parents=True)
                config.save(run_dir)
                write_json(run_dir / SOURCE_FILE, {"data": data, "data_label": data_label})
            return self._launch(RunView(name, run_dir, config, data_label), data, resume=False)

    def resume_run(self, name: str | None = None) -> RunStatus:
        """Continue an unfinished run (one of `status().resumable`; None: the newest) from its latest checkpoint."""
        with self._lock:
            self._check_idle()
            if not self._resumable:
                raise Busy("no unfinished run to resume: every run in the runs folder finished, or none has saved a "
                           "checkpoint yet")
            names = [r["run"] for r in self._resumable]
            if name not in (None, "", *names):
                raise Busy(f"no unfinished run called {shown(name)}; these can be resumed: {', '.join(names)}")
            run_dir = self.runs_dir / (name or names[0])
            try:
                meta = load_meta(run_dir / CHECKPOINT_FILE)  # the checkpoint is the run's authority
            except MnistGanError as e:
                self._resumable = [r for r in self._resumable if r["run"] != run_dir.name]
                raise Busy(f"cannot resume {run_dir.name}: {e}") from None
            source = read_json(run_dir / SOURCE_FILE) or {}
            run = RunView(run_dir.name, run_dir, meta.config, source.get("data_label") or "MNIST")
            run.restore(meta)
            return self._launch(run, source.get("data"), resume=True)

    def _check_idle(self) -> None:
        if self.run and self.run.active:
            raise Busy(f"a training run is in progress ({self.run.name}, {self.run.state}, step {self.run.step} of "
                       f"{self.run.config.steps}): stop it before starting another")

    def _launch(self, run: RunView, data: str | None, resume: bool) -> RunStatus:
        """Start the child for `run` (callers hold the lock)."""
        command = [sys.executable, "-m", "mnist_gan.training.child", "--run-dir", str(run.run_dir)]
        command += ["--data", data] if data else []
        command += ["--resume"] if resume else []
        with _writable(run.run_dir), open(run.run_dir / LOG_FILE, "ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log, text=True, bufsize=1, env=child_env())
        self.run, self._process = run, process
        self.version += 1
        self._resumable = [r for r in self._resumable if r["run"] != run.name]
        threading.Thread(target=self._follow, args=(process, run), daemon=True, name=f"worker-{run.name}").start()
        return self.status()

    def pause(self) -> RunStatus:
        return self._command("pause", "pause", lambda state: state.can_pause, State.PAUSING)

    def resume(self) -> RunStatus:
        return self._command("resume", "resume", lambda state: state.can_resume, State.RESUMING)

    def stop(self) -> RunStatus:
        return self._command("stop", "stop", lambda state: state.active, State.STOPPING)

    def take(self, kind: str) -> RunStatus:
        """Take a step by hand (a D step, a G step, one iteration or ten) in the paused run."""
        if kind not in KINDS:
            raise InvalidInput(f"a step by hand is one of {', '.join(map(repr, KINDS))}, got {shown(kind)}")
        return self._command(f"take a step ({kind})", json.dumps({"take": kind}),
                             lambda state: state == State.PAUSED, None)

    def edit(self, changes: dict) -> RunStatus:
        """Change live settings of the active run from its next compiled call on (config.LIVE_SETTINGS)."""
        with self._lock:
            run = self.run
            if run is not None and run.active:
                live_edit(run.config, changes)  # refused here, now, with the field's name
        return self._command("change settings", json.dumps({"edit": changes}),
                             lambda state: state.active and state != State.STOPPING, None)

    def _command(self, verb: str, message: str, allowed: Callable[[State], bool], expect: State | None) -> RunStatus:
        with self._lock:
            run = self.run
            if run is None:
                raise Busy(f"cannot {verb}: no run yet")
            if not allowed(run.state):
                raise Busy(f"cannot {verb}: the run is {run.state}")
            try:
                self._process.stdin.write(message + "\n")
                self._process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise Busy(f"cannot {verb}: the training process has ended") from None
            if expect is not None:
                run.expect(expect)
                self.version += 1
            return self.status()

    def fork(self, parent: str, step: int | None, changes: dict) -> RunStatus:
        """Start a new run from `parent`'s kept checkpoint at `step` (None: its latest) with `changes`: the same
        weights, optimizer moments, RNG stream and data order, so the changes are the only difference."""
        with self._lock:
            self._check_idle()
            self._prune()
            parent_dir = self.runs_dir / parent if isinstance(parent, str) and "/" not in parent else None
            if parent_dir is None or parent not in _names(self.runs_dir) or not (parent_dir / CHECKPOINT_FILE).is_file():
                raise InvalidInput(f"no run called {shown(parent)} with a checkpoint to fork from")
            timeline = step_checkpoints(parent_dir)
            latest = load_meta(parent_dir / CHECKPOINT_FILE).step
            if step is None or step == latest:
                source, step = parent_dir / CHECKPOINT_FILE, latest
            elif step in timeline:
                source = timeline[step]
            else:
                raise InvalidInput(f"{parent} has no checkpoint at step {shown(step)}; it can be forked at steps "
                                   f"{', '.join(f'{s:,}' for s in sorted({*timeline, latest}))}")
            arrays, meta = load_checkpoint(source)
            saved = meta.config
            changes = {k: v for k, v in changes.items() if getattr(saved, k) != v}  # what really differs
            config = saved.replace(**changes)
            if config.signature != saved.signature:
                raise InvalidInput("a fork keeps its parent's models: architecture, labels, latent code and size "
                                   "cannot change")
            name = self._new_name(config, f"{parent[:60]}-fork{step}")
            run_dir = self.runs_dir / name
            meta = meta.replace(config=config, best={}, alarms=[],
                                origin={"run": parent, "step": step, "changes": changes})
            with _writable(self.runs_dir):
                run_dir.mkdir(parents=True)
                save_checkpoint(run_dir / CHECKPOINT_FILE, arrays, meta)
                config.save(run_dir)
                _copy_timeline(parent_dir, run_dir, step)
            source_info = read_json(parent_dir / SOURCE_FILE) or {}
            write_json(run_dir / SOURCE_FILE, source_info)
            run = RunView(name, run_dir, config, source_info.get("data_label") or "MNIST")
            run.restore(meta)
            return self._launch(run, source_info.get("data"), resume=True)

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

    def _follow(self, process: subprocess.Popen, run: RunView) -> None:
        for line in process.stdout:  # ends when the child exits
            try:
                run.apply(from_json(line))
            except ValueError:
                continue  # not an event line
            self.version += 1
        code = process.wait()
        if run is self.run:  # (an earlier run's process may end after the next run started)
            self._resumable = find_resumable(self.runs_dir)  # before the run shows as ended: both show at once
        run.ended(code)
        self.version += 1
        if self.on_done:
            try:
                self.on_done(run)
            except MnistGanError as e:  # e.g. the saved weights do not load: say so where the run is watched
                run.note(f"could not use its weights: {e}")

    def _prune(self) -> None:
        """Delete the oldest run folders beyond the count or the disk budget (callers hold the lock)."""
        keep = {self._resumable[0]["run"]} if self._resumable else set()
        removed = prune_runs(self.runs_dir, keep, self.max_runs, self.max_bytes)
        if removed:
            self._resumable = [r for r in self._resumable if r["run"] not in removed]
            log.info("pruned %d old run folders from %s", len(removed), self.runs_dir)
            if self.on_pruned:
                self.on_pruned(removed)

    def _new_name(self, config: GANConfig, base: str | None = None) -> str:
        base = base or f"{time.strftime('%Y%m%d-%H%M%S')}-{config.architecture}" \
                       f"{'-conditional' if config.conditional else ''}"
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
        return step, read_png(path)

    def atlas(self, index: int) -> tuple[int, str] | None:
        """(step, npz path) of the index-th latent atlas of the current run (negative counts from the end)."""
        paths = self.run.atlas_paths() if self.run else []
        return paths[max(-len(paths), min(index, len(paths) - 1))] if paths else None

    def grids(self, limit: int = 100) -> list[np.ndarray]:
        """Up to `limit` of the run's sample grids, evenly spaced, first and last included."""
        samples = self.run.sample_paths() if self.run else []
        return [read_png(path) for _, path in downsample(samples, limit)]


def find_resumable(runs_dir: Path) -> list[dict]:
    """Every run folder with a checkpoint whose run has not finished, newest first: what "Resume run" offers."""
    try:
        checkpoints = sorted(runs_dir.glob(f"*/{CHECKPOINT_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    found = []
    for checkpoint in checkpoints:
        try:
            meta = load_meta(checkpoint)
        except MnistGanError:
            continue
        if meta.step < meta.config.steps:
            label = (read_json(checkpoint.parent / SOURCE_FILE) or {}).get("data_label")
            found.append({"run": checkpoint.parent.name, "step": meta.step, "steps": meta.config.steps,
                          "data": label})
    return found


def prune_runs(runs_dir: Path, keep: set[str], max_runs: int, max_bytes: int) -> list[str]:
    """Delete the oldest run folders until at most `max_runs` (minus one, for the run about to start) remain and
    they hold at most `max_bytes`, never one named in `keep`; returns the deleted runs' names."""
    try:
        runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    except OSError:
        return []
    sizes = {run: _folder_bytes(run) for run in runs}
    removed, total = [], sum(sizes.values())
    for run in runs:
        if len(runs) - len(removed) < max_runs and total <= max_bytes:
            break
        if run.name in keep:
            continue
        shutil.rmtree(run, ignore_errors=True)
        removed.append(run.name)
        total -= sizes[run]
    return removed


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


def _names(runs_dir: Path) -> set[str]:
    try:
        return {p.name for p in runs_dir.iterdir() if p.is_dir()}
    except OSError:
        return set()


def _copy_timeline(parent: Path, fork: Path, step: int) -> None:
    """The parent's sample grids and atlases up to `step` (hard links), so the fork's timeline starts at 0 too."""
    for folder in ("samples", "atlas"):
        for path in sorted((parent / folder).glob("*")) if (parent / folder).is_dir() else []:
            if path.stem.isdigit() and int(path.stem) <= step:
                (fork / folder).mkdir(exist_ok=True)
                try:
                    os.link(path, fork / folder / path.name)
                except OSError:
                    shutil.copyfile(path, fork / folder / path.name)


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
    log.warning("cannot write %s: %s", folder, error)  # the path, for the admin's log; the page gets the name
    return (f"cannot write the run folder {Path(folder).name}: {reason}. Free some disk space or make the folder "
            "writable (or set MNIST_GAN_RUNS to another folder); the app keeps running")


def read_png(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"))
