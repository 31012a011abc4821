"""Which inversion loss: pixels alone, or pixels plus the shipped classifier's feature distance (a perceptual term)?

Each model inverts the same held-out test digits (the bundled sample's first N; a conditional model is told the
true digit) with the app's settings (4 restarts from 400 draws, 200 Adam steps), once per loss, batched. Reported:
the RMS pixel error of the reconstructions (0-1), the share the classifier reads as the true digit, and the
seconds per digit. Own samples (whose exact z exists) show what the optimiser leaves behind.
"""

from __future__ import annotations

import time

import numpy as np

FEATURE_WEIGHT = 0.1  # feature distances are ~0.6 between digits (squared, mean over 128): comparable to pixel MSE


def measure(rounds: int = 5, n: int = 40) -> list[dict]:
    from mnist_gan.data import SAMPLE_DATA, load_mnist
    from mnist_gan.images import latents
    from mnist_gan.inside.inversion import Inverter, Settings
    from mnist_gan.model.generator import Generator, shipped_models
    from mnist_gan.quality.metrics import Classifier

    data, classifier = load_mnist(SAMPLE_DATA), Classifier.load()
    targets, truth = data.x_test[:n], data.y_test[:n]
    rows = []
    for name, folder in shipped_models().items():
        inverter = Inverter(Generator.load(folder), classifier)
        labels = truth if inverter.config.conditional else None
        for loss, settings in (("pixels", Settings()), (f"pixels + {FEATURE_WEIGHT:g} x features",
                                                        Settings(features=FEATURE_WEIGHT))):
            inverter.invert(targets[:2], None if labels is None else labels[:2], settings)  # compile
            started = time.perf_counter()
            found = inverter.invert(targets, labels, settings)
            seconds = (time.perf_counter() - started) / n
            reads = classifier.predict(found.images)[0].argmax(axis=1)
            rows.append({"model": name, "loss": loss, "digits": n,
                         "error median": round(float(np.median(found.errors)), 4),
                         "error p90": round(float(np.percentile(found.errors, 90)), 4),
                         "read as true digit": f"{np.mean(reads == truth):.1%}", "s per digit": round(seconds, 3)})
        own_labels = np.arange(n) % 10 if inverter.config.conditional else None
        own = inverter.generator.images(latents(99, n, inverter.config.latent_dim), own_labels)
        found = inverter.invert(own, own_labels, Settings())
        rows.append({"model": name, "loss": "pixels, on the model's own samples", "digits": n,
                     "error median": round(float(np.median(found.errors)), 4),
                     "error p90": round(float(np.percentile(found.errors, 90)), 4)})
    return rows
