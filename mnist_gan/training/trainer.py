"""The training loop: draws batches and noise, runs the compiled step, publishes events, checkpoints.

It can be paused, resumed and stopped from another thread, and resumed from its run folder after the
process died. Subscribers receive the typed events of `events`: Step after every compiled call, Samples,
Quality (when an evaluator is given and eval_every > 0), Checkpoint, Divergence (the run rolled back to its last
checkpoint, or paused) and StateChanged (running, paused, stopped, finished, failed); and, for the Train tab's
laboratory, Edited (a live edit took effect), Inspected (a step taken by hand while paused), AtlasDrawn and Alarm.

Other threads ask for live edits and hand-taken steps through `edit()` and `take()`: the loop applies them
between compiled calls, so the run's state only ever changes in its own thread.
"""

from __future__ import annotations

import math
import os
import platform
import queue
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_gan.atomic_files import remove_partial_files
from mnist_gan.config import GANConfig, live_edit
from mnist_gan.data import MNIST
from mnist_gan.device import current_device
from mnist_gan.errors import CheckpointError, MnistGanError
from mnist_gan.images import latents, make_grid, to_uint8
from mnist_gan.model.architectures import NUM_CLASSES
from mnist_gan.model.gan import GAN, METRICS
from mnist_gan.model.generator import Generator, describe, save_models
from mnist_gan.run_folder import ALARMS_DIR, BEST_DIR, CHECKPOINT_FILE, SAMPLES_DIR, SNAPSHOTS_DIR

from . import alarms, atlas, manual_steps
from .checkpoint import RunMeta, keep_step_checkpoint, load_checkpoint, save_checkpoint, step_checkpoints
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
from .tensorboard import TensorBoardLog

STEPS_PER_CALL = 10  # iterations per compiled call: amortises Python and dispatch overhead (measured ~1.4x)
DIVERGENCE_PATIENCE = 2_000  # steps of a perfect D (real and fake) before the run counts as collapsed
MAX_ROLLBACKS = 3  # then the run pauses for a person to decide


class DivergenceWatch:
    """Spots a run gone wrong: a non-finite loss, or D perfect on real and fake images for a long stretch."""

    def __init__(self, patience: int = DIVERGENCE_PATIENCE):
        self.patience = patience
        self.streak_start: int | None = None

    def check(self, row: dict) -> str | None:
        """The reason the run diverged at this history row, or None."""
        if not all(math.isfinite(row[k]) for k in METRICS):
            return "a loss became NaN or infinite"
        if row["d_acc_real"] >= 1.0 and row["d_acc_fake"] >= 1.0:
            self.streak_start = row["step"] if self.streak_start is None else self.streak_start
            if row["step"] - self.streak_start >= self.patience:
                return f"the discriminator was perfect on real and generated images for {self.patience} steps"
        else:
            self.streak_start = None
        return None


class Trainer:
    """Trains one GAN run; the run folder (if given) receives checkpoints, sample grids and final weights."""

    def __init__(self, config: GANConfig, data: MNIST, run_dir: str | Path | None = None,
                 evaluator: Callable | None = None):
        self.config, self.data = config, data
        self.run_dir = Path(run_dir) if run_dir else None
        self.evaluator = evaluator  # called with the sampler (a Generator); returns a dict of metrics
        self.gan = GAN(config)
        self.sampler = Generator(config, self.gan.sampler, name="sampler")  # the EMA generator when there is one
        self.device = current_device()  # what trained it: recorded and said when the run starts
        self.rng = np.random.default_rng(config.seed)
        self.step = 0
        self.elapsed = 0.0  # training seconds, pauses excluded, across resumes
        self.history: list[dict] = []
        self.best: dict = {}  # step, cFID and wall time of the best evaluation so far
        self.notes: dict = {}  # extra facts for the training record (e.g. the command that started the run)
        self.incidents: list[dict] = []  # divergences and what was done about them
        self.edits: list[dict] = []  # live edits: step, changes, before
        self.quality_log: list[dict] = []  # every evaluation (kept in the checkpoint: runs are compared by it)
        self.alarms: list[dict] = []
        self.origin: dict = {}  # a fork's parent run and step
        self.watch = DivergenceWatch()
        self.state = State.IDLE
        self._subscribers: list[Callable[[Event], None]] = []
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._requests: queue.Queue = queue.Queue()  # ("edit", changes) and ("take", kind), from other threads
        self._wake = threading.Event()
        self._judge = None  # the shipped classifier, for the atlas's digits (loaded on first use)
        n = 10 * NUM_CLASSES if config.conditional else 64
        # Fixed noise: the grid shows the same digits improving, not a new draw each time.
        self.sample_z = latents(config.seed, n, config.latent_dim)
        self.sample_labels = np.repeat(np.arange(NUM_CLASSES), n // NUM_CLASSES) if config.conditional else None
        if self.run_dir:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_partial_files(self.run_dir)
            config.save(self.run_dir)
            self.subscribe(TensorBoardLog(self.run_dir, config))  # TensorBoard event files in the run folder

    # --- control (thread-safe) -------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Whether the run was asked to stop (it stops, saved, at its next safe point)."""
        return self._stop.is_set()

    def edit(self, changes: dict) -> None:
        """Change live settings (config.LIVE_SETTINGS) from the next compiled call on; ConfigError now if invalid."""
        live_edit(self.config, changes)
        self._requests.put(("edit", dict(changes)))
        self._wake.set()

    def take(self, kind: str) -> None:
        """Take one step by hand while paused (manual_steps.KINDS: d, g, iteration, 10), looked at."""
        if kind not in manual_steps.KINDS:
            raise ValueError(f"a step is one of {', '.join(manual_steps.KINDS)}")
        self._requests.put(("take", kind))
        self._wake.set()

    def _publish(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def _set_state(self, state: State, message: str = "") -> None:
        self.state = state
        self._publish(StateChanged(state, self.step, message))

    # --- the loop ----------------------------------------------------------------------------------------------

    def run(self) -> State:
        """Train until config.steps or stop(); returns the final state."""
        config = self.config
        self._set_state(State.RUNNING, f"training on {self.device}")
        rate = None
        try:
            while self.step < self.config.steps and not self._stop.is_set():
                self._serve(paused=False)  # live edits take effect here, at the next compiled call
                if not self._running.is_set():
                    self.save()
                    self._set_state(State.PAUSED)
                    while not (self._running.is_set() or self._stop.is_set()):
                        self._wake.wait()
                        self._wake.clear()
                        self._serve(paused=True)
                    if self._stop.is_set():
                        break
                    self._set_state(State.RUNNING)
                    continue
                config = self.config
                k = self._chunk_size()
                started = time.perf_counter()
                values = self.gan.iterate(*self.batches(k))
                seconds = time.perf_counter() - started
                self.elapsed += seconds
                self.step += k
                speed = k * config.batch_size / seconds
                rate = speed if rate is None else 0.9 * rate + 0.1 * speed  # smoothed for a steady ETA
                reason = self.watch.check(self._record(values, rate))
                if reason:
                    self._recover(reason)
                else:
                    self._periodic()
        except Exception as e:
            self._set_state(State.FAILED, str(e) if isinstance(e, MnistGanError) else f"{type(e).__name__}: {e}")
            raise
        self.save()
        self._set_state(State.FINISHED if self.step >= self.config.steps else State.STOPPED)
        return self.state

    def _serve(self, paused: bool) -> None:
        """Apply what other threads asked for: live edits always, steps by hand only while paused."""
        while True:
            try:
                kind, value = self._requests.get_nowait()
            except queue.Empty:
                return
            if kind == "edit":
                self._apply_edit(value)
            elif paused:
                self.step_by_hand(value)
            else:  # a step by hand needs a paused run; the app only offers it then
                self._publish(manual_steps.refused(self.step, value, "the run is not paused"))

    def step_by_hand(self, kind: str) -> None:
        """Take one step of `kind` (manual_steps.KINDS) in this thread, while paused, looked at on its own batch: a
        real step of the run, counted (one for a D, a G or a whole iteration; ten for ten), in the history (marked as
        taken by hand) and the checkpoint, its evidence in the run folder and an Inspected event."""
        gan = self.gan
        if kind == "10":
            z, labels = self.sample_z[:manual_steps.SHOWN], self.sample_labels
            labels = None if labels is None else labels[:manual_steps.SHOWN].reshape(-1, 1)
            d_labels = np.zeros((len(z), 1), np.int32) if labels is None else np.asarray(labels, np.int32)
            before = self.sampler.images(z, labels)
            scores_before = gan.scores(before, d_labels)
            values = gan.iterate(*self.batches(10))
            after = self.sampler.images(z, labels)
            metrics, summary, arrays = manual_steps.ten_iterations(before, after, scores_before,
                                                                   gan.scores(after, d_labels), values)
            self.step += 10
        else:
            real, real_labels, z_fake, fake_labels, z_gen, gen_labels = (a[0] for a in self.batches(1))
            metrics, summary, arrays = {}, {}, {}
            if kind in ("d", "iteration"):
                done = manual_steps.d_step(gan.inspect_d_step(real[0], real_labels[0], z_fake[0], fake_labels[0]),
                                           gan.loss.threshold)
                metrics, summary["d"] = done[0], done[1]
                arrays.update(done[2])
            if kind in ("g", "iteration"):
                done = manual_steps.g_step(gan.inspect_g_step(z_gen, gen_labels))
                metrics |= done[0]
                summary["g"] = done[1]
                arrays.update(done[2])
            self.step += 1
        self._record(metrics, rate=None, manual=kind)
        path = manual_steps.save(self.run_dir, self.step, kind, arrays) if self.run_dir else None
        self._publish(Inspected(self.step, kind, str(path) if path else None, summary))
        self._periodic()
        self.save()  # a step by hand is part of the run: a resume or a fork from here includes it

    def _apply_edit(self, changes: dict) -> None:
        try:
            edited = live_edit(self.config, changes)
        except MnistGanError:  # checked when asked: only a race with another edit could land here
            return
        before = {name: getattr(self.config, name) for name in changes}
        self.gan.set_live(edited)
        self.config = edited
        self.edits.append({"step": self.step, "changes": dict(changes), "before": before})
        self._publish(Edited(self.step, dict(changes), before))

    def _chunk_size(self) -> int:
        """Iterations for the next call, ending exactly on the next sampling/checkpoint/eval boundary."""
        c = self.config
        boundaries = [c.steps, _next_multiple(self.step, c.sample_every), _next_multiple(self.step, c.checkpoint_every)]
        if c.eval_every and self.evaluator:
            boundaries.append(_next_multiple(self.step, c.eval_every))
        if c.snapshot_every:
            boundaries.append(_next_multiple(self.step, c.snapshot_every))
        return max(1, min(STEPS_PER_CALL, min(boundaries) - self.step))

    def batches(self, k: int) -> tuple[np.ndarray, ...]:
        """k iterations of inputs: for each of D's d_steps updates a real batch drawn with replacement (as the
        recipe) and a noise batch, then G's noise batch. With d_steps 1 the draws are those of the recipe's loop
        (the same numbers in the same order), so runs, resumes and forks stay exact."""
        b, d, data = self.config.batch_size, self.config.d_steps, self.data
        idx = self.rng.integers(0, len(data.x_train), (k, d, b))
        z = self.rng.standard_normal((k, d + 1, b, self.config.latent_dim), dtype=np.float32)
        labels = self.rng.integers(0, NUM_CLASSES, (k, d + 1, b, 1), dtype=np.int32)
        return data.x_train[idx], data.y_train[idx][..., None], z[:, :d], labels[:, :d], z[:, d], labels[:, d]

    def _record(self, values: np.ndarray | dict, rate: float, manual: str | None = None) -> dict:
        """One history row from a call's metrics ((K, METRICS) values, or by name: None for what a step by hand
        did not do), published as a Step."""
        mean = values if isinstance(values, dict) else dict(zip(METRICS, values.mean(axis=0).tolist()))
        mean = {k: None if mean.get(k) is None else round(float(mean[k]), 5) for k in METRICS}
        parts = (mean["d_loss_real"], mean["d_loss_fake"])
        mean["d_loss"] = None if None in parts else round(0.5 * sum(parts), 5)
        eta = (self.config.steps - self.step) * self.config.batch_size / rate if rate else None
        event = Step(step=self.step, **mean, images_per_sec=round(rate or 0.0, 1), eta_s=eta, manual=manual)
        self.history.append(event.row())
        self._publish(event)
        return event.row()

    def _recover(self, reason: str) -> None:
        """Roll back to the last checkpoint (with fresh noise, or the same batches would diverge again); pause
        after MAX_ROLLBACKS, or when there is no checkpoint to go back to."""
        bad_step = self.step
        path = self.run_dir / CHECKPOINT_FILE if self.run_dir else None
        if path and path.is_file():
            arrays, meta = load_checkpoint(path)
            self.gan.load_state_arrays(arrays)
            self.step, self.history = meta.step, list(meta.history)
            self.quality_log = [q for q in self.quality_log if q["step"] <= self.step]
            self.rng = np.random.default_rng([self.config.seed, len(self.incidents) + 1, self.step])
            action = f"rolled back to step {self.step}"
            if len(self.incidents) + 1 >= MAX_ROLLBACKS:
                action += "; paused after repeated divergence"
                self.pause()
        else:
            action = "paused: no checkpoint to roll back to"
            self.pause()
        self.watch = DivergenceWatch(self.watch.patience)
        incident = Divergence(bad_step, reason, action)
        self.incidents.append({"step": bad_step, "reason": reason, "action": action})
        self._publish(incident)

    def _periodic(self) -> None:
        c = self.config
        if self.step % c.sample_every == 0 or self.step == c.steps:
            self._publish_samples()
        if c.eval_every and self.evaluator and self.step % c.eval_every == 0:
            row = self.evaluator(self.sampler)
            self.quality_log.append({"step": self.step, **row})
            self._publish(Quality(self.step, row))
            self._keep_best(row)
            self._watch_for_collapse(row)
        if c.snapshot_every and self.run_dir and self.step % c.snapshot_every == 0:
            # a weights folder like best/, with D (the Inside tab needs it): bench/select.py chooses among them by
            # quality and memorisation after the run, and the chosen one ships as it is
            save_models(self.run_dir / SNAPSHOTS_DIR / f"{self.step:07d}", self.config, self.gan.sampler, self.record(),
                        self.gan.discriminator)
        if self.step % c.checkpoint_every == 0:
            self.save(keep=True)

    def _watch_for_collapse(self, row: dict) -> None:
        """Raise an Alarm (once per kind and stretch of trouble) when the evidence says the run is collapsing."""
        found = alarms.check(self.history, self.quality_log, self.config)
        if found is None or any(a["kind"] == found.kind and a["step"] >= self.step - 5 * self.config.eval_every
                                for a in self.alarms):
            return
        path = None
        pairs = row.get("duplicate_pairs") or []
        if self.run_dir and pairs and self.evaluator is not None:
            path = str(alarms.save_evidence(self.run_dir / ALARMS_DIR / f"{self.step:07d}.png", self.sampler,
                                            self.evaluator, pairs))
        forks = sorted(step_checkpoints(self.run_dir)) if self.run_dir else []
        alarm = Alarm(self.step, found.kind, found.message, found.evidence, path, found.remedy(self.config),
                      forks[-1] if forks else None)
        self.alarms.append({"step": alarm.step, "kind": alarm.kind, "message": alarm.message, "remedy": alarm.remedy,
                            "fork_step": alarm.fork_step, "evidence": alarm.evidence, "path": alarm.path})
        self._publish(alarm)

    def _keep_best(self, row: dict) -> None:
        """Export the sampler to run_dir/best whenever cFID improves (stopping on quality beats training longer)."""
        cfid = row.get("cfid")
        if cfid is None or cfid >= self.best.get("cfid", float("inf")):
            return
        self.best = {"step": self.step, "cfid": cfid, "n": row.get("n"), "wall_time_s": round(self.elapsed, 1)}
        if self.run_dir:
            save_models(self.run_dir / BEST_DIR, self.config, self.gan.sampler, {**self.record(), "best": self.best},
                        self.gan.discriminator)

    def sample_grid(self) -> np.ndarray:
        """The fixed-noise grid from the current sampler (EMA generator when enabled)."""
        images = to_uint8(self.sampler.images(self.sample_z, self.sample_labels))
        return make_grid(images, cols=len(images) // NUM_CLASSES if self.config.conditional else 8)

    def _publish_samples(self) -> None:
        grid = self.sample_grid()
        path = None
        if self.run_dir:
            from PIL import Image

            path = self.run_dir / SAMPLES_DIR / f"{self.step:07d}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(grid).save(path)
        self._publish(Samples(self.step, str(path) if path else None, grid))
        if self.run_dir:  # the atlas at each sample step: ~0.1 s of 144 samples, D's scores and the judge's digits
            tiles = atlas.draw(self.sampler, self.gan, self.config, self._classifier())
            self._publish(AtlasDrawn(self.step, str(atlas.save(self.run_dir, self.step, tiles))))

    def _classifier(self):
        """The shipped classifier (the evaluator's when there is one), or None where it does not ship."""
        if self._judge is None:
            from mnist_gan.quality.metrics import CLASSIFIER_DIR, CLASSIFIER_WEIGHTS, Classifier

            if getattr(self.evaluator, "classifier", None) is not None:
                self._judge = self.evaluator.classifier
            elif (CLASSIFIER_DIR / CLASSIFIER_WEIGHTS).is_file():
                self._judge = Classifier.load()
        return self._judge

    # --- persistence -------------------------------------------------------------------------------------------

    def record(self) -> dict:
        """The training record saved beside the weights."""
        last = self.history[-1] if self.history else {}
        return {
            "steps": self.step, "batch_size": self.config.batch_size, "wall_time_s": round(self.elapsed, 1),
            "images_per_sec": last.get("images_per_sec"), "data": self.data.source,
            "machine": machine(), "final": {k: last.get(k) for k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")},
            "incidents": self.incidents, **({"edits": self.edits} if self.edits else {}),
            **({"forked_from": self.origin} if self.origin else {}),
            "device": self.device,  # CPU model and threads, or the GPU's name
            **self.notes,
        }

    def save(self, keep: bool = False) -> None:
        """Checkpoint the run and export the sampler's weights (so the run folder is a weights folder); `keep`:
        also keep this checkpoint on the run's timeline, where forks can start from it."""
        if not self.run_dir:
            return
        arrays = self.gan.state_arrays()
        if not all(np.isfinite(a).all() for a in arrays.values()):
            return  # never let a diverged state replace the last good checkpoint
        meta = RunMeta(self.config, self.step, self.elapsed, self.rng.bit_generator.state, self.history,
                       self.incidents, self.best, self.edits, self.quality_log, self.origin, self.alarms)
        save_checkpoint(self.run_dir / CHECKPOINT_FILE, arrays, meta)
        if keep:
            keep_step_checkpoint(self.run_dir, self.step)
        self.config.save(self.run_dir)  # a copy of the checkpoint's, live edits included
        save_models(self.run_dir, self.config, self.gan.sampler, self.record(), self.gan.discriminator)
        self._publish(Checkpoint(self.step, str(self.run_dir / CHECKPOINT_FILE)))

    @classmethod
    def resume_from(cls, run_dir: str | Path, data: MNIST, evaluator: Callable | None = None,
                    changes: dict | None = None) -> Trainer:
        """Continue a run from its checkpoint: same weights, optimizer moments, step, RNG stream and history.

        The checkpoint's config is the run's one authority (gan_config.json is a copy written from it); `changes`
        (e.g. more steps) apply from here on, as long as they leave the models' shapes alone.
        """
        run_dir = Path(run_dir)
        arrays, meta = load_checkpoint(run_dir / CHECKPOINT_FILE)
        saved = meta.config
        config = saved.replace(**(changes or {}))
        if saved.signature != config.signature:
            raise CheckpointError(f"{run_dir} holds a {describe(saved)}, not a {describe(config)}")
        if saved.spectral_norm != config.spectral_norm:  # it adds variables to D: the checkpoint would not fit
            raise CheckpointError(f"{run_dir} was trained {'with' if saved.spectral_norm else 'without'} "
                                  "spectral normalisation; a resumed run keeps that")
        for name in ("pack", "minibatch_std", "d_dropout", "d_width"):  # D's shape, inputs or random state
            if getattr(saved, name) != getattr(config, name):
                raise CheckpointError(f"{run_dir} was trained with {name}={getattr(saved, name)}; a resumed run "
                                      "keeps its discriminator as it was")
        trainer = cls(config, data, run_dir, evaluator)
        trainer.gan.load_state_arrays(arrays)
        trainer.gan.set_live(config)  # the checkpoint holds the optimizers' learning rates: the config decides
        trainer.step, trainer.elapsed, trainer.history = meta.step, meta.elapsed, list(meta.history)
        trainer.incidents, trainer.best = list(meta.incidents), dict(meta.best)
        trainer.rng.bit_generator.state = meta.rng
        trainer.edits, trainer.quality_log = list(meta.edits), list(meta.quality)
        trainer.origin, trainer.alarms = dict(meta.origin), list(meta.alarms)
        return trainer


@contextmanager
def interrupts_stop(trainer: Trainer):
    """While inside: Ctrl-C (SIGINT) and SIGTERM ask `trainer` to stop at its next safe point, where it saves. The
    handler only sets the run's stop flag: a KeyboardInterrupt raised wherever the signal lands could be swallowed
    by the code running then (measured: a Ctrl-C during the atlas's classifier call was lost, and the run went on).
    A second Ctrl-C interrupts at once. For the main thread of a process that trains (the CLI, the app's child)."""
    def handler(signum, frame):
        if signum == signal.SIGINT and trainer.stopping:
            raise KeyboardInterrupt  # asked twice: the person wants out now
        trainer.stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def open_run(run_dir: str | Path, data: MNIST, config: GANConfig | None = None,
             changes: dict | None = None) -> Trainer:
    """The trainer of the run in `run_dir`: a new run of `config`, or (no config) the run resumed from its checkpoint
    with `changes` from here on. A run with eval_every is judged by the shipped classifier as it trains (its quality
    rows, and its best sampler kept in best/)."""
    if config is None:
        trainer = Trainer.resume_from(run_dir, data, changes=changes)
    else:
        trainer = Trainer(config, data, run_dir)
    if trainer.config.eval_every:
        from mnist_gan.quality.metrics import Evaluator

        trainer.evaluator = Evaluator()
    return trainer


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def machine() -> str:
    """CPU model, cores and TensorFlow version: enough to compare training records."""
    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {cores} cores, {platform.system()}, TensorFlow {tf.__version__}"
