"""Training images/s: the fast compiled trainer against the recipe's plain train_on_batch loop, same run."""

from __future__ import annotations

import numpy as np

from bench.common import interleaved


def measure(batch_sizes=(32, 256), rounds: int = 5, seconds: float = 2.0, architecture: str = "classic") -> list[dict]:
    from mnist_gan.config import GANConfig
    from mnist_gan.data import SAMPLE_DATA, load_mnist
    from mnist_gan.gan import GAN
    from mnist_gan.recipe_loop import RecipeLoop
    from mnist_gan.trainer import STEPS_PER_CALL, Trainer

    data = load_mnist(SAMPLE_DATA)  # pixel values do not change the cost; shapes do
    rows = []
    for batch in batch_sizes:
        config = GANConfig(architecture=architecture, batch_size=batch)
        trainer = Trainer(config, data)  # the product's loop: batches drawn, STEPS_PER_CALL iterations per call
        recipe = RecipeLoop(GAN(config))
        rng = np.random.default_rng(0)

        def fast():
            trainer.gan.iterate(*trainer._draw(STEPS_PER_CALL))

        def plain():  # the recipe: random real batch, fresh noise, predict + 2 D steps + combined step
            idx = rng.integers(0, len(data.x_train), batch)
            recipe.iteration(data.x_train[idx], rng.standard_normal((batch, config.latent_dim), np.float32),
                           rng.standard_normal((batch, config.latent_dim), np.float32))

        fast(), plain(), fast(), plain()  # trace, compile, warm caches
        speed = interleaved({"fast": fast, "plain": lambda: plain()}, rounds, seconds, 1)
        fast_ips = speed["fast"] * STEPS_PER_CALL * batch
        plain_ips = speed["plain"] * batch
        rows.append({"model": architecture, "batch": batch, "fast img/s": round(fast_ips),
                     "plain img/s": round(plain_ips), "ratio": round(fast_ips / plain_ips, 2)})
    return rows
