"""The training device: a GPU when TensorFlow sees one, else the CPU; --device forces one; the run says which."""

import pytest

from mnist_gan.config import GANConfig
from mnist_gan.device import DeviceError, current_device, select_device
from mnist_gan.training.events import State, StateChanged
from mnist_gan.training.trainer import Trainer
from testing.models import TINY
from testing.system import cli


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def test_the_record_and_the_run_say_which_device_trained_it(tiny_data):
    events = []
    trainer = Trainer(GANConfig(batch_size=16, steps=10, sample_every=10, checkpoint_every=10), tiny_data)
    trainer.subscribe(events.append)
    trainer.run()
    assert trainer.record()["device"] == trainer.device == current_device()
    assert trainer.device.startswith("GPU 0: " if _has_gpu() else "CPU: ")
    running = next(e for e in events if isinstance(e, StateChanged) and e.state == State.RUNNING)
    assert running.message == f"training on {trainer.device}"  # the Train tab shows a run's message


def test_an_unknown_device_is_refused():
    with pytest.raises(DeviceError, match="--device must be one of auto, cpu, gpu"):
        select_device("tpu")


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU")
def test_gpu_without_one_is_one_clear_line_from_the_cli(tmp_path):
    with pytest.raises(DeviceError, match="--device gpu: TensorFlow sees no GPU"):
        select_device("gpu")
    out = cli("train", "--data", TINY, "--run-dir", tmp_path / "run", "--steps", 10, "--device", "gpu")
    assert out.returncode == 2 and "error: --device gpu: TensorFlow sees no GPU" in out.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.slow
def test_cpu_forced_trains_on_the_cpu_and_says_so(tmp_path):
    out = cli("train", "--data", TINY, "--run-dir", tmp_path / "run", "--steps", 10, "--batch-size", 16,
              "--sample-every", 10, "--device", "cpu", "--quiet")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("training on CPU: ") and "finished at step 10" in out.stdout
    assert '"device": "CPU: ' in (tmp_path / "run" / "training.json").read_text()
