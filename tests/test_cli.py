"""The CLI as a user runs it: subprocesses on the shipped tiny data."""

import json

import numpy as np
import pytest

from testing.models import TINY
from testing.system import cli as run


@pytest.mark.parametrize("command", ["train", "sample", "interpolate"])
def test_help(command):
    out = run(command, "--help")
    assert out.returncode == 0 and "usage: python -m mnist_gan " + command in out.stdout


@pytest.mark.slow
def test_train_then_sample_then_interpolate(tmp_path):
    run_dir = tmp_path / "run"
    out = run("train", "--data", TINY, "--run-dir", run_dir, "--steps", 30, "--batch-size", 16,
              "--sample-every", 10, "--checkpoint-every", 10)
    assert out.returncode == 0, out.stderr
    assert "finished at step 30" in out.stdout and "it/s" in out.stderr  # the tqdm bar with its rate and ETA
    assert out.stdout.startswith("training on ")  # the device: "CPU: <model>, N threads" or "GPU 0: <name>"
    assert (run_dir / "generator.weights.h5").is_file() and (run_dir / "samples" / "0000030.png").is_file()

    out = run("train", "--data", TINY, "--resume", run_dir)
    assert out.returncode == 0 and "finished at step 30" in out.stdout  # resume keeps the run's own config
    out = run("train", "--data", TINY, "--resume", run_dir, "--steps", 40)
    assert out.returncode == 0 and "finished at step 40" in out.stdout  # unless told: here, train longer
    assert json.loads((run_dir / "gan_config.json").read_text())["steps"] == 40
    out = run("train", "--data", TINY, "--resume", run_dir, "--architecture", "dcgan")
    assert out.returncode != 0 and "holds a classic generator" in out.stderr

    npz, png = tmp_path / "samples.npz", tmp_path / "grid.png"
    out = run("sample", "--weights", run_dir, "--n", 50, "--seed", 3, "--out", npz, "--out", png)
    assert out.returncode == 0, out.stderr
    images = np.load(npz)["images"]
    assert images.dtype == np.uint8 and images.shape == (50, 28, 28)
    run("sample", "--weights", run_dir, "--n", 50, "--seed", 3, "--out", tmp_path / "again.npz")
    np.testing.assert_array_equal(np.load(tmp_path / "again.npz")["images"], images)
    assert png.read_bytes()[:4] == b"\x89PNG"

    out = run("interpolate", "--weights", run_dir, "--frames", 6, "--out", tmp_path / "strip.png",
              "--gif", tmp_path / "walk.gif")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "walk.gif").read_bytes()[:6] == b"GIF89a"


def test_sample_from_the_shipped_default(tmp_path):
    out = run("sample", "--n", 10000, "--out", tmp_path / "s.npz")
    assert out.returncode == 0, out.stderr
    assert np.load(tmp_path / "s.npz")["images"].shape == (10000, 28, 28)


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["train", "--data", "/nonexistent.npz"], "MNIST file not found"),
    (["train", "--data", TINY, "--batch-size", "0"], "batch_size: must be between"),
    (["train", "--data", TINY, "--architecture", "resnet"], "architecture: unknown 'resnet'"),
    (["sample", "--weights", "/nonexistent", "--out", "x.png"], "not an mnist-gan weights folder"),
    (["sample", "--seed", "-4", "--out", "x.png"], "seed must be between"),
    (["sample", "--n", "0", "--out", "x.png"], "--n must be between"),
])
def test_errors_are_one_clear_line(args, message):
    out = run(*args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
