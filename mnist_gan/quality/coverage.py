"""Coverage: can the generator draw every digit? Invert held-out test digits and see how close G gets, per class.

A class-conditional model is told each digit's true class (the question is whether G draws *this* 3 when asked
for a 3); unconditional models search every latent region. The error is the RMS pixel difference (pixels 0-1).

**Reconstructed well** means: closer to the digit than the digit is to itself moved by half a pixel (the mean of
half a pixel right and half a pixel down, linearly interpolated), a bar each digit sets for itself. Why half a pixel:
MNIST centres its digits by a whole-pixel shift (their centres of mass spread 0.29 px around pixel 14), so the data
itself carries up to half a pixel of position jitter; a reconstruction inside that is as good as the dataset's own
precision. Two other bars are reported beside it: **beats the nearest training digit** (G drew this held-out digit
closer than any training digit is), and the **optimiser's slack**: the 95th percentile of the error of inverting the
model's own samples, for which an exact z exists. Real digits almost never get within the slack: G's drawings are
smoother than handwriting, and that bar shows by how much.
"""

from __future__ import annotations

import numpy as np

from mnist_gan.images import latents
from mnist_gan.inside.inversion import Inversion, Inverter, Search
from mnist_gan.model.architectures import NUM_CLASSES

from .metrics import nearest_distances

CALIBRATION_N = 200
CHUNK = 256  # targets inverted at once: 1,024 rows with 4 restarts (one XLA compilation for every chunk)
WORST = 24


def half_pixel_error(images: np.ndarray) -> np.ndarray:
    """Each [-1, 1] image's RMS difference (pixels 0-1) from itself moved half a pixel, the mean of right and
    down (linear interpolation: the average of each pixel and its neighbour): the "reconstructed well" bar."""
    x = (np.asarray(images, np.float64).reshape(-1, 28, 28) + 1.0) / 2.0
    right, down = np.zeros_like(x), np.zeros_like(x)
    right[:, :, 1:], down[:, 1:, :] = x[:, :, :-1], x[:, :-1, :]
    return np.mean([np.sqrt(np.mean(((x - (x + moved) / 2)) ** 2, axis=(1, 2))) for moved in (right, down)],
                   axis=0)


def invert_all(inverter: Inverter, targets: np.ndarray, labels: np.ndarray | None, settings: Search,
               seed: int = 0, log=None) -> Inversion:
    """invert() over many targets in fixed-size chunks (the last one padded: one compilation)."""
    parts, size = [], min(CHUNK, len(targets))
    for start in range(0, len(targets), size):
        chunk = targets[start:start + size]
        n = len(chunk)
        padded = np.concatenate([chunk, np.repeat(chunk[:1], size - n, axis=0)]) if n < size else chunk
        chunk_labels = None
        if labels is not None:
            chunk_labels = labels[start:start + size]
            chunk_labels = np.concatenate([chunk_labels, np.repeat(chunk_labels[:1], size - n)])
        found = inverter.invert(padded, chunk_labels, settings, seed=seed + start)
        parts.append(Inversion(found.z[:n], None if found.labels is None else found.labels[:n], found.images[:n],
                               found.errors[:n], found.path[:n, -1:]))
        if log:
            log(f"inverted {start + n} of {len(targets)}")
    labels = None if parts[0].labels is None else np.concatenate([p.labels for p in parts])
    return Inversion(np.concatenate([p.z for p in parts]), labels, np.concatenate([p.images for p in parts]),
                     np.concatenate([p.errors for p in parts]), np.concatenate([p.path for p in parts]))


def own_sample_slack(inverter: Inverter, n: int = CALIBRATION_N, seed: int = 54321,
                     settings: Search | None = None) -> np.ndarray:
    """Errors of inverting the model's own samples (a z exists that draws each exactly): the optimiser's slack."""
    settings = settings or Search()
    generator = inverter.generator
    labels = np.arange(n) % NUM_CLASSES if generator.config.conditional else None
    own = generator.images(latents(seed, n, generator.config.latent_dim), labels)
    return invert_all(inverter, own, labels, settings, seed=seed).errors


def coverage(inverter: Inverter, targets: np.ndarray, truth: np.ndarray, train: np.ndarray, classifier,
             settings: Search | None = None, log=None) -> dict:
    """Per-class coverage of test digits `targets` ([-1, 1]) with true classes `truth`; `train`: the training
    digits the "well" bar compares with. Returns the table's rows, the calibration and the worst digits."""
    settings = settings or Search()
    conditional = inverter.generator.config.conditional
    slack = own_sample_slack(inverter, settings=settings)
    exact_bar = float(np.percentile(slack, 95))
    found = invert_all(inverter, targets, truth if conditional else None, settings, log=log)
    nearest = nearest_distances(targets, train) / 28.0  # Euclidean on 0-1 pixels -> RMS
    reads = classifier.predict(found.images)[0].argmax(axis=1)
    bar = half_pixel_error(targets)
    rows = []
    for digit in [*np.unique(truth).tolist(), None]:
        mine = np.ones(len(truth), bool) if digit is None else truth == digit
        errors = found.errors[mine]
        rows.append({"digit": "all" if digit is None else digit, "n": int(mine.sum()),
                     "error_p10": float(np.percentile(errors, 10)), "error_median": float(np.median(errors)),
                     "error_p90": float(np.percentile(errors, 90)),
                     "well": float(np.mean(errors < bar[mine])),
                     "beats_nearest": float(np.mean(errors < nearest[mine])),
                     "exact": float(np.mean(errors <= exact_bar)),
                     "read_as_true": float(np.mean(reads[mine] == truth[mine])),
                     "nearest_training_median": float(np.median(nearest[mine]))})
    worst = np.argsort(found.errors / bar)[::-1][:WORST]  # furthest above their own bar
    return {"rows": rows, "exact_bar": exact_bar, "own_sample_error_median": float(np.median(slack)),
            "worst": worst, "targets": targets[worst], "reconstructions": found.images[worst],
            "labels_given": conditional}


def table(result: dict) -> str:
    """The coverage rows as a Markdown table."""
    header = ("| digit | n | error p10 / median / p90 | reconstructed well | beats the nearest training digit | "
              "within the optimiser's slack | read as the true digit |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['digit']} | {row['n']} | {row['error_p10']:.3f} / {row['error_median']:.3f} / "
                     f"{row['error_p90']:.3f} | {row['well']:.1%} | {row['beats_nearest']:.1%} | {row['exact']:.1%} "
                     f"| {row['read_as_true']:.1%} |")
    return "\n".join(lines)


def run(weights: str, n: int, data_path: str | None, restarts: int = Search.restarts, log=print) -> dict:
    """The coverage report of a weights folder on the first n test digits of `data_path` (None: the bundled
    sample's 1,000), with the nearest-training bar from the same file's training digits."""
    from mnist_gan.data import SAMPLE_DATA, load_mnist
    from mnist_gan.model.generator import Generator

    from .metrics import Classifier

    data = load_mnist(data_path or SAMPLE_DATA)
    n = min(n, len(data.x_test))
    result = coverage(Inverter(Generator.load(weights)), data.x_test[:n], data.y_test[:n], data.x_train,
                      Classifier.load(), Search(restarts=restarts), log=log)
    result["test_digits"] = f"the first {n:,} test digits of {'MNIST' if data_path else 'the bundled sample'}"
    result["training_digits"] = (f"{len(data.x_train):,} training digits "
                                 f"({'MNIST' if data_path else 'the bundled sample'})")
    return result
