"""Faults: a real training process killed with SIGKILL at random moments loses at most one checkpoint interval."""

import os
import random
import signal
import subprocess
import threading
import time

import pytest

from mnist_gan.atomic_files import TMP_PREFIX
from mnist_gan.config import GANConfig
from mnist_gan.model.generator import Generator
from mnist_gan.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
from mnist_gan.training.events import Samples, State, Step
from mnist_gan.training.trainer import Trainer, interrupts_stop
from testing.models import TINY
from testing.system import cli_process, wait_until

EVERY = 10


def _start(run_dir, resume: bool):
    args = ["--resume", run_dir] if resume else ["--run-dir", run_dir, "--steps", 100_000, "--batch-size", 8,
                                                 "--checkpoint-every", EVERY, "--sample-every", 50]
    return cli_process("train", "--data", TINY, "--quiet", *args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _saved(run_dir) -> int:
    """The step of the run's checkpoint, -1 before the first."""
    return load_checkpoint(run_dir / CHECKPOINT_FILE)[1].step if (run_dir / CHECKPOINT_FILE).exists() else -1


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_half_written_checkpoint(tmp_path):
    rng = random.Random(1234)
    run_dir = tmp_path / "run"
    last_step = -1
    for attempt in range(4):
        process = _start(run_dir, resume=attempt > 0 and (run_dir / CHECKPOINT_FILE).exists())
        # wait until this process has written at least one checkpoint of its own, then kill it at a random moment
        wait_until(lambda: process.poll() is not None or _saved(run_dir) > last_step, 600, "a checkpoint")
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(rng.uniform(0.0, 1.5))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)

        arrays, meta = load_checkpoint(run_dir / CHECKPOINT_FILE)  # always a whole, readable checkpoint
        assert meta.step % EVERY == 0 and meta.step > last_step  # progress kept, at a checkpoint boundary
        assert len(meta.history) == meta.step // EVERY
        Generator.load(run_dir).generate(0, 4)  # and the exported weights load too
        last_step = meta.step

    for attempt in range(3):  # Ctrl-C at a random moment of a resumed run: it stops, saved, and exits cleanly
        process = _start(run_dir, resume=True)  # a start sweeps the partial files a kill can leave behind
        wait_until(lambda: process.poll() is not None or _saved(run_dir) > last_step, 600,
                   "a checkpoint of the resumed run")
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, process.stderr.read().decode()[-2000:]
        saved = load_checkpoint(run_dir / CHECKPOINT_FILE)[1].step
        assert saved > last_step
        last_step = saved
    assert not list(run_dir.glob(TMP_PREFIX + "*"))


def test_ctrl_c_during_any_work_of_the_loop_stops_the_run_saved(tiny_data, tmp_path):
    """The signal lands inside the sample step's work (the grid, then the atlas's classifier call: where a
    KeyboardInterrupt was once swallowed and the run went on), and at a random moment of the steps themselves."""
    config = GANConfig(batch_size=8, steps=100_000, sample_every=20, checkpoint_every=10, seed=5)
    # the handlers the process had (one started in a shell's background inherits SIGINT ignored)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    for moment in ("samples", "atlas", "steps"):
        trainer = Trainer(config, tiny_data, tmp_path / moment)
        sent = []

        def interrupt(event, moment=moment):
            due = {"samples": isinstance(event, Samples), "atlas": isinstance(event, Samples) and event.step >= 40,
                   "steps": isinstance(event, Step) and event.step == 57 - 57 % 10}
            if due[moment] and not sent:
                sent.append(event.step)
                if moment == "atlas":  # inside the atlas: its classifier call is what runs when the signal lands
                    threading.Timer(0.0, os.kill, (os.getpid(), signal.SIGINT)).start()
                else:
                    os.kill(os.getpid(), signal.SIGINT)

        trainer.subscribe(interrupt)
        with interrupts_stop(trainer):
            state = trainer.run()
        assert state == State.STOPPED and sent, moment
        saved = load_checkpoint(tmp_path / moment / CHECKPOINT_FILE)[1]
        assert saved.step == trainer.step and sent[0] <= trainer.step <= sent[0] + 30, (moment, sent, trainer.step)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # only there while inside
