"""Compute efficiency: FLOPs of a training iteration (from layer shapes) x iterations/s, over the sgemm peak.

Also reports how the step's cost grows with batch size and with the model (classic vs convolutional).
"""

from __future__ import annotations

from bench.common import interleaved


def forward_flops(model) -> int:
    """Multiply-adds x 2 of one sample's forward pass through the Dense and convolution layers."""
    from keras import layers

    flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            kh, kw, a, b = layer.kernel.shape  # Conv2D: (kh, kw, in, out); Conv2DTranspose: (kh, kw, out, in)
            out_h, out_w = layer.output.shape[1:3]
            in_h, in_w = layer.input.shape[1:3]
            # a transposed conv does its multiply-adds at the input resolution
            positions = in_h * in_w if isinstance(layer, layers.Conv2DTranspose) else out_h * out_w
            flops += 2 * kh * kw * a * b * positions
    return flops


def step_flops(gan) -> int:
    """FLOPs of one iteration per sample: G forward for D's fakes; D forward+backward (3x) on real and on fake;
    G's update = G forward + backward (3x) and D forward + input-gradient backward (2x)."""
    g, d = forward_flops(gan.generator), forward_flops(gan.discriminator)
    return g + 3 * d + 3 * d + 3 * g + 2 * d


def sgemm_peak(size: int = 2048, rounds: int = 5) -> float:
    """float32 matmul FLOP/s of a large square product in this process (median of rounds)."""
    import tensorflow as tf

    a = tf.random.normal((size, size), seed=1)
    matmul = tf.function(lambda: tf.matmul(a, a))
    matmul().numpy()
    return interleaved({"sgemm": lambda: matmul().numpy()}, rounds, 1.0, 2 * size**3)["sgemm"]


def measure(rounds: int = 5, batch_sizes=(32, 64, 128, 256, 512, 1024), architectures=("classic", "dcgan"),
            seconds: float = 1.5) -> list[dict]:
    from mnist_gan.config import GANConfig
    from mnist_gan.data import TINY_DATA, load_mnist
    from mnist_gan.training.trainer import STEPS_PER_CALL, Trainer

    data = load_mnist(TINY_DATA)
    peak = sgemm_peak(rounds=rounds)
    rows = []
    for architecture in architectures:
        for batch in batch_sizes:
            trainer = Trainer(GANConfig(architecture=architecture, batch_size=batch), data)
            inputs = trainer.batches(STEPS_PER_CALL)
            call = lambda: trainer.gan.steps(*inputs)  # noqa: E731  inputs drawn once: measure the step alone
            call()
            calls_per_s = interleaved({"step": call}, max(1, rounds // 2), seconds, 1)["step"]
            steps_per_s = calls_per_s * STEPS_PER_CALL
            flops = step_flops(trainer.gan) * batch
            rows.append({"model": architecture, "batch": batch, "ms/step": round(1000 / steps_per_s, 2),
                         "img/s": round(steps_per_s * batch), "GFLOP/step": round(flops / 1e9, 3),
                         "GFLOP/s": round(flops * steps_per_s / 1e9, 1),
                         "of sgemm peak": f"{flops * steps_per_s / peak:.0%}"})
    rows.append({"model": "sgemm 2048x2048 (peak)", "GFLOP/s": round(peak / 1e9, 1)})
    return rows


