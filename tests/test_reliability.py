"""Faults: a real training process killed with SIGKILL at random moments loses at most one checkpoint interval."""

import os
import random
import signal
import subprocess
import time

import pytest

from mnist_gan.atomic_files import TMP_PREFIX
from mnist_gan.model.generator import Generator
from mnist_gan.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
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
        wait_until(lambda: process.poll() is not None or _saved(run_dir) > last_step, 90, "a checkpoint")
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(rng.uniform(0.0, 1.5))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)

        arrays, meta = load_checkpoint(run_dir / CHECKPOINT_FILE)  # always a whole, readable checkpoint
        assert meta.step % EVERY == 0 and meta.step > last_step  # progress kept, at a checkpoint boundary
        assert len(meta.history) == meta.step // EVERY
        Generator.load(run_dir).generate(0, 4)  # and the exported weights load too
        last_step = meta.step

    process = _start(run_dir, resume=True)  # the next start sweeps the partial files a kill can leave behind
    wait_until(lambda: _saved(run_dir) > last_step, 90, "a checkpoint of the resumed run")
    process.send_signal(signal.SIGINT)  # Ctrl-C: the CLI saves and exits cleanly
    assert process.wait(60) == 0
    assert load_checkpoint(run_dir / CHECKPOINT_FILE)[1].step > last_step
    assert not list(run_dir.glob(TMP_PREFIX + "*"))
