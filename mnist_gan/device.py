"""Where training runs: the GPU when TensorFlow sees one, else the CPU; forced with --device; threads per process.

Both choices must be made before TensorFlow initialises its runtime (its first operation): after that, visible
devices and thread pools are fixed for the life of the process. Call `select_device` first thing in a process
that trains (the CLI's train and each sweep trial do).
"""

from __future__ import annotations

import os
import platform

from .errors import MnistGanError

DEVICES = ("auto", "cpu", "gpu")


class DeviceError(MnistGanError):
    """The device asked for is not there (a GPU on a machine without one), or was asked for too late."""


def select_device(kind: str = "auto", threads: int | None = None) -> str:
    """Make TensorFlow train on `kind` (auto: a GPU when it sees one) with `threads` CPU threads per op pool;
    returns the device in words, as the training record and the CLI show it."""
    if kind not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {kind!r}")
    import tensorflow as tf

    try:
        if threads:
            # intra-op: the threads one matrix product may use; inter-op: independent ops at once. A GAN step is
            # a chain of dependent products, so one inter-op thread loses nothing and never oversubscribes.
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        gpus = tf.config.list_physical_devices("GPU")
        if kind == "gpu" and not gpus:
            raise DeviceError("--device gpu: TensorFlow sees no GPU on this machine (no CUDA driver, "
                              f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r}, or a "
                              "TensorFlow built without CUDA: pip install 'tensorflow[and-cuda]'); use --device "
                              "auto or cpu")
        if kind == "cpu" and gpus:
            tf.config.set_visible_devices([], "GPU")
        elif gpus:
            # grow memory as needed: several sweep trials may share one GPU
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as e:  # TensorFlow's "cannot be modified after initialization"
        raise DeviceError(f"the training device must be chosen before TensorFlow starts ({e})") from None
    return current_device()


def current_device() -> str:
    """The device TensorFlow places training on, in words: "GPU 0: NVIDIA H200" or "CPU: <model>, N threads"."""
    import tensorflow as tf

    gpus = tf.config.get_visible_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        more = f" (+{len(gpus) - 1} more visible)" if len(gpus) > 1 else ""
        return f"GPU 0: {details.get('device_name', gpus[0].name)}{more}"
    threads = tf.config.threading.get_intra_op_parallelism_threads() or cpu_count()
    return f"CPU: {cpu_model()}, {threads} thread{'s' if threads != 1 else ''}"


def cpu_count() -> int:
    """Cores this process may run on (its affinity), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_model() -> str:
    """The processor's marketing name from /proc/cpuinfo, else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
