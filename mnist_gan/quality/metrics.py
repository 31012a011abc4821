"""Quality you can measure: an MNIST classifier trained by the project, and pure metrics over generated digits.

The classifier is the judge. Its feature layer ("features", 128 values) gives cFID, the Frechet distance between
the Gaussians of sample features and of the 10,000 MNIST test images (their mean and covariance ship beside the
weights, so no MNIST file is needed to score). It trains on the first 50,000 training images: the last 10,000
are the "held-out real" reference every model is compared with. Its probabilities give the classifier score, the recognisable
fraction, the class histogram and, for conditional models, label agreement. Memorisation compares pixel-space
nearest-neighbour distances to the training set with those of real images the GAN never saw, so it needs the data.

cFID is biased by the number of samples: always report N and compare only at equal N.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np
from keras import layers

from mnist_gan.atomic_files import read_json, write_json
from mnist_gan.data import MNIST, to_unit_range
from mnist_gan.errors import InvalidInput, WeightsError
from mnist_gan.model.architectures import NUM_CLASSES
from mnist_gan.model.generator import SHIPPED_DIR, Generator, default_labels

CLASSIFIER_DIR = SHIPPED_DIR / "classifier"
CLASSIFIER_WEIGHTS = "classifier.weights.h5"
CLASSIFIER_RECORD = "classifier.json"  # test accuracy, how it was trained, the reference rows
REFERENCE_FILE = "reference.npz"  # mean and covariance of the test images' features
# features (float16) of the first BANK test images in REAL_ORDER: the real set of precision/recall/density/coverage
# when no MNIST file is at hand (the Evaluator during training)
BANK_FILE = "reference_features.npz"
BANK = 4_000
FEATURE_LAYER = "features"
HOLDOUT = 10_000  # the last 10,000 training images: never seen by the classifier, the "held-out real" reference
RECOGNISABLE = 0.9  # max probability above this counts as a confidently recognised digit
REAL_ORDER_SEED = 0  # test images in a fixed random order: any prefix is a fair sample of all ten digits


# --- the classifier --------------------------------------------------------------------------------------------

def classifier_model():
    """A small all-convolutional MNIST classifier (~140k weights) whose pooled features are named "features"."""
    image = keras.Input((28, 28, 1), name="image")
    x = image
    for filters, pool in ((32, False), (32, True), (64, False), (64, True), (128, False)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D()(x)
    features = layers.GlobalAveragePooling2D(name=FEATURE_LAYER)(x)
    probabilities = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(layers.Dropout(0.2)(features))
    return keras.Model(image, [probabilities, features], name="classifier")


def train_classifier(data: MNIST, epochs: int = 8, batch_size: int = 128, seed: int = 0,
                     log: Callable[[str], None] = print):
    """Train the judge on all training images but the last HOLDOUT; returns (model, record with test accuracy)."""
    keras.utils.set_random_seed(seed)
    model = classifier_model()
    # Small shifts and rotations: the judge must also read the off-centre, slanted digits a GAN draws.
    augment = keras.Sequential([layers.RandomTranslation(0.1, 0.1, fill_value=-1.0, seed=seed),
                                layers.RandomRotation(0.04, fill_value=-1.0, seed=seed)])
    image = keras.Input((28, 28, 1))
    trainer = keras.Model(image, model(augment(image))[0])
    steps = epochs * -(-(len(data.x_train) - HOLDOUT) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps)
    trainer.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"],
                    jit_compile=False)  # XLA is slower for convolutions on CPU (measured for the GANs)
    started = time.perf_counter()
    x, y = data.x_train[:-HOLDOUT], data.y_train[:-HOLDOUT]
    for epoch in range(epochs):
        history = trainer.fit(x, y, batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch, verbose=0,
                              shuffle=True)
        log(f"epoch {epoch + 1}/{epochs}: loss {history.history['loss'][-1]:.4f}, "
            f"train accuracy {history.history['accuracy'][-1]:.4f}, {time.perf_counter() - started:.0f} s")
    probabilities, _ = Classifier(model).predict(data.x_test)
    accuracy = float(np.mean(probabilities.argmax(1) == data.y_test))
    record = {"test_accuracy": round(accuracy, 5), "test_images": len(data.x_test), "epochs": epochs,
              "batch_size": batch_size, "seed": seed, "optimizer": "Adam 2e-3, cosine decay",
              "augmentation": "RandomTranslation 0.1, RandomRotation 0.04", "train_images": len(x),
              "held_out_images": f"x_train[-{HOLDOUT}:] (not trained on)", "data": data.source,
              "wall_time_s": round(time.perf_counter() - started, 1), "parameters": model.count_params()}
    return model, record


class Classifier:
    """The judge: images (uint8 or [-1, 1]) in, class probabilities and features out, plus the test statistics."""

    def __init__(self, model, reference: dict | None = None, record: dict | None = None,
                 bank: np.ndarray | None = None):
        import tensorflow as tf

        self.model, self.reference, self.record = model, reference or {}, record or {}
        self.bank = bank  # real test-image features for precision/recall/density/coverage (None: not shipped)
        self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False)

    @classmethod
    def load(cls, folder: str | Path = CLASSIFIER_DIR) -> Classifier:
        """Build the classifier in code and load only weights into it (a weights file cannot carry code)."""
        folder = Path(folder)
        path = folder / CLASSIFIER_WEIGHTS
        if not path.is_file():
            raise WeightsError(f"no {CLASSIFIER_WEIGHTS} in {folder}: train it with "
                                    f"python -m mnist_gan train-classifier --data MNIST.npz")
        model = classifier_model()
        model.load_weights(path)
        with np.load(folder / REFERENCE_FILE, allow_pickle=False) as npz:
            reference = {k: npz[k] for k in npz.files}
        bank = None
        if (folder / BANK_FILE).is_file():
            with np.load(folder / BANK_FILE, allow_pickle=False) as npz:
                bank = npz["features"].astype(np.float64)
        return cls(model, reference, read_json(folder / CLASSIFIER_RECORD), bank)

    def predict(self, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, 10), features (N, 128)) for uint8 (N, 28, 28[, 1]) or float [-1, 1] images."""
        x = as_unit_range(images)
        outputs = [self._call(x[i:i + batch]) for i in range(0, len(x), batch)]
        return (np.concatenate([np.asarray(p) for p, _ in outputs]).astype(np.float64),
                np.concatenate([np.asarray(f) for _, f in outputs]).astype(np.float64))

    def digit_scores(self, images: np.ndarray) -> np.ndarray:
        """Log-probabilities (N, 10): how much each image looks like each digit (the latent explorer's scorer)."""
        return np.log(self.predict(images)[0] + 1e-9)


def save_classifier(folder: str | Path, model, record: dict, test_features: np.ndarray) -> Path:
    """Write the weights, the test-feature Gaussian (cFID's reference) and the record to `folder`."""
    import io

    from mnist_gan.atomic_files import atomic_path, atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / CLASSIFIER_WEIGHTS, suffix=".weights.h5") as tmp:  # Keras insists on the suffix
        model.save_weights(tmp, overwrite=True)
    mu, sigma = gaussian(test_features)
    buffer = io.BytesIO()
    np.savez(buffer, mu=mu, sigma=sigma, n=np.array(len(test_features)))
    atomic_write(folder / REFERENCE_FILE, buffer.getvalue())
    write_json(folder / CLASSIFIER_RECORD, record)
    return folder


def real_order(n_test: int) -> np.ndarray:
    """The fixed random order of the test images whose first N are the real set of an N-sample evaluation."""
    return np.random.default_rng(REAL_ORDER_SEED).permutation(n_test)


def real_features(classifier: Classifier, data: MNIST, n: int) -> np.ndarray:
    """Features of the first n test images in real_order (all of them when n exceeds the test set)."""
    return classifier.predict(data.x_test[real_order(len(data.x_test))[:n]])[1]


def save_reference_bank(folder: str | Path, classifier: Classifier, data: MNIST, size: int = BANK) -> Path:
    """Write the first `size` test images' features (float16, ~1 MB), in real_order, to folder/BANK_FILE."""
    import io

    from mnist_gan.atomic_files import atomic_write

    indices = real_order(len(data.x_test))[:size]
    features = classifier.predict(data.x_test[indices])[1].astype(np.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=features, indices=indices.astype(np.int32))
    atomic_write(Path(folder) / BANK_FILE, buffer.getvalue())
    classifier.bank = features.astype(np.float64)
    return Path(folder) / BANK_FILE


def as_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 or float [-1, 1] images as float32 (N, 28, 28, 1) in [-1, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return to_unit_range(images)
    x = images.astype(np.float32).reshape(-1, 28, 28, 1)
    if x.size and not (np.all(np.isfinite(x)) and x.min() >= -1.0001 and x.max() <= 1.0001):
        raise InvalidInput("float images must be finite and in [-1, 1] (uint8 images are taken as 0..255)")
    return x


# --- pure metrics ----------------------------------------------------------------------------------------------

def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (N - 1 normalised) of (N, D) features."""
    features = np.asarray(features, np.float64)
    if len(features) < 2:
        raise InvalidInput("a covariance needs at least 2 samples")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2): |mu1-mu2|^2 + Tr(s1 + s2 - 2 (s1 s2)^1/2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    # Tr((s1 s2)^1/2) = Tr((A s2 A)^1/2) with A = s1^1/2: both symmetric, so eigh is stable where sqrtm is not.
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * cross)


def classifier_score(probabilities: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))): 10 when every sample is a confident digit and the classes are balanced."""
    p = np.asarray(probabilities, np.float64)
    marginal = p.mean(axis=0)
    kl = np.sum(p * (np.log(p + 1e-12) - np.log(marginal + 1e-12)), axis=1)
    return float(np.exp(kl.mean()))


def recognisable(probabilities: np.ndarray, threshold: float = RECOGNISABLE) -> float:
    """Fraction of samples whose most likely class has probability above `threshold`."""
    return float(np.mean(np.asarray(probabilities).max(axis=1) > threshold))


def class_histogram(probabilities: np.ndarray) -> np.ndarray:
    """Share of samples classified as each digit 0-9 (sums to 1)."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    return np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)


def kl_from_uniform(histogram: np.ndarray) -> float:
    """KL(histogram || uniform) in nats: 0 for balanced classes, log(10) = 2.30 for a single class."""
    h = np.asarray(histogram, np.float64)
    h = h[h > 0]
    return float(np.sum(h * np.log(h * NUM_CLASSES)))


def label_agreement(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples classified as the digit they were asked for."""
    return float(np.mean(np.asarray(probabilities).argmax(axis=1) == np.asarray(labels).ravel()))


def nearest_distances(queries: np.ndarray, references: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Euclidean distance from each query image to its nearest reference image, pixels in [0, 1]."""
    q = (as_unit_range(queries).reshape(len(queries), -1) + 1) / 2
    r = (as_unit_range(references).reshape(len(references), -1) + 1) / 2
    r_norms = np.sum(r * r, axis=1)
    out = np.empty(len(q), np.float64)
    for i in range(0, len(q), chunk):  # chunks bound memory: a (chunk, len(r)) matrix at a time
        block = q[i:i + chunk]
        squared = np.sum(block * block, axis=1)[:, None] + r_norms[None, :] - 2 * block @ r.T
        out[i:i + chunk] = np.sqrt(np.clip(squared.min(axis=1), 0, None))
    return out


def memorisation(sample_distances: np.ndarray, real_distances: np.ndarray) -> dict:
    """Samples' nearest-training-image distances against those of unseen real images (same training set).

    `nn_ratio` below 1 means samples sit closer to training images than new real digits do (copying);
    `near_copies` is the share of samples closer than the 1st percentile of the real distances (about 0.01
    for a model that does not copy).
    """
    sample_distances, real_distances = np.asarray(sample_distances), np.asarray(real_distances)
    return {"nn_train_median": float(np.median(sample_distances)),
            "nn_train_median_real": float(np.median(real_distances)),
            "nn_ratio": float(np.median(sample_distances) / np.median(real_distances)),
            "near_copies": float(np.mean(sample_distances < np.percentile(real_distances, 1)))}


# Precision/recall (Kynkaenniemi et al. 2019) and density/coverage (Naeem et al. 2020): k-NN balls in feature
# space. A point is inside a ball when its distance is strictly below the radius, as in the authors' prdc code:
# then a set compared with itself has density exactly 1 (each point lies in its own ball and in the balls of the
# k - 1 points it is strictly nearer to than their k-th neighbour).
def near_duplicates(features: np.ndarray, threshold: float, pairs: int = 8) -> tuple[float, list[list[int]]]:
    """(share of samples whose nearest other sample is closer than `threshold`, the closest `pairs` pairs)."""
    f = np.asarray(features, np.float64)
    squared = np.sum(f * f, axis=1)
    distances = np.sqrt(np.clip(squared[:, None] + squared[None, :] - 2 * f @ f.T, 0, None))
    np.fill_diagonal(distances, np.inf)
    nearest = distances.min(axis=1)
    order = np.argsort(nearest)[: 2 * pairs]
    found, seen = [], set()
    for i in order:
        j = int(distances[i].argmin())
        if (min(i, j), max(i, j)) not in seen:
            seen.add((min(i, j), max(i, j)))
            found.append([int(i), j])
    return float(np.mean(nearest < threshold)), found[:pairs]


def real_threshold(features: np.ndarray) -> float:
    """The distance below which only 1% of real digits have their nearest (real) neighbour."""
    f = np.asarray(features, np.float64)
    squared = np.sum(f * f, axis=1)
    distances = np.sqrt(np.clip(squared[:, None] + squared[None, :] - 2 * f @ f.T, 0, None))
    np.fill_diagonal(distances, np.inf)
    return float(np.percentile(distances.min(axis=1), 1))


PR_K = 3  # Kynkaenniemi et al.'s default
DC_K = 5  # Naeem et al.'s default


def _distance_blocks(a: np.ndarray, b: np.ndarray, chunk: int = 1024):
    """(start, Euclidean distances of a[start:start + chunk] to all of b), one (chunk, len(b)) block at a time."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    b_norms = np.sum(b * b, axis=1)
    for i in range(0, len(a), chunk):  # chunks bound memory: 10,000 x 10,000 distances would be 800 MB at once
        block = a[i:i + chunk]
        squared = np.sum(block * block, axis=1)[:, None] + b_norms[None, :] - 2 * block @ b.T
        yield i, np.sqrt(np.clip(squared, 0, None))


def knn_radii(features: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Distance from each point to its k-th nearest other point of the same set: the radius of its k-NN ball."""
    features = np.asarray(features, np.float64)
    if not 1 <= k < len(features):
        raise ValueError(f"k-NN radii need 1 <= k < the number of points ({len(features)}), got k={k}")
    # Each point's radius is taken from its column (the distances from every other point to it), the orientation
    # _in_balls compares a query with a ball in: a matrix product's rounding depends on an element's position, so
    # the k-th neighbour's distance to a centre must be computed the same way for the radius and for the test, or
    # it can fall inside its own boundary (two sets that are the same scored a density of 1.0007 on one machine).
    smallest = np.full((k, len(features)), np.inf)  # the k smallest distances to each point seen so far
    for i, d in _distance_blocks(features, features, chunk):
        d[np.arange(len(d)), np.arange(i, i + len(d))] = np.inf  # a point is not its own neighbour
        smallest = np.partition(np.concatenate([smallest, d]), k - 1, axis=0)[:k]
    return smallest[k - 1]


def _in_balls(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024):
    """(balls of `centres` holding each query (counts), whether each centre's ball holds any query)."""
    counts = np.zeros(len(queries), np.int64)
    hit = np.zeros(len(centres), bool)
    for i, d in _distance_blocks(queries, centres, chunk):
        inside = d < radii[None, :]
        counts[i:i + len(d)] = inside.sum(axis=1)
        hit |= inside.any(axis=0)
    return counts, hit


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K) -> dict:
    """Kynkaenniemi et al. 2019: share of fakes inside the real k-NN manifold, and of reals inside the fake one."""
    fake_in_real, _ = _in_balls(fake, real, knn_radii(real, k))
    real_in_fake, _ = _in_balls(real, fake, knn_radii(fake, k))
    return {"precision": float(np.mean(fake_in_real > 0)), "recall": float(np.mean(real_in_fake > 0))}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = DC_K) -> dict:
    """Naeem et al. 2020: real k-NN balls holding each fake (mean over fakes, / k), and share of real balls hit."""
    # Density counts every real ball a fake falls in, so a few outlying real points cannot inflate it as they
    # inflate precision; coverage asks only whether each real point's neighbourhood received a fake at all.
    counts, hit = _in_balls(fake, real, knn_radii(real, k))
    return {"density": float(counts.sum() / (k * len(fake))), "coverage": float(np.mean(hit))}


def prdc(real: np.ndarray, fake: np.ndarray, k_pr: int = PR_K, k_dc: int = DC_K) -> dict:
    """Precision and recall (k=3) and density and coverage (k=5) of fake features against real features."""
    return {**precision_recall(real, fake, k_pr), **density_coverage(real, fake, k_dc)}


def quality(probabilities: np.ndarray, features: np.ndarray, reference: dict, labels: np.ndarray | None = None,
            held_out_cfid: dict | None = None, reals: np.ndarray | None = None) -> dict:
    """Every classifier metric of one sample set; `held_out_cfid` maps N to the real-image cFID at that N; `reals`
    (real images' features) adds precision, recall, density and coverage."""
    histogram = class_histogram(probabilities)
    n = len(probabilities)
    cfid = frechet_distance(*gaussian(features), reference["mu"], reference["sigma"])
    row = {"n": n, "cfid": cfid}
    real = (held_out_cfid or {}).get(str(n))
    if real:  # the ratio only against the real-image value at the same N: cFID's bias depends on N
        row["cfid_x_real"] = cfid / real
    row.update({"classifier_score": classifier_score(probabilities), "recognisable": recognisable(probabilities),
                "class_kl": kl_from_uniform(histogram), "class_min": float(histogram.min()),
                "class_max": float(histogram.max())})
    if labels is not None:
        row["label_agreement"] = label_agreement(probabilities, labels)
    if reals is not None:
        row.update(prdc(reals, features))
        row["prdc_real_n"] = len(reals)  # these four depend on both set sizes: compare at equal sizes only
    row["class_histogram"] = [round(float(h), 5) for h in histogram]
    return row


def score(classifier: Classifier, images: np.ndarray, labels: np.ndarray | None = None,
          train: np.ndarray | None = None, unseen: np.ndarray | None = None, reals: np.ndarray | None = None) -> dict:
    """quality() of images, plus memorisation when given the training images and as many unseen real ones, plus
    precision/recall/density/coverage when given real images' features (`reals`, e.g. from real_features())."""
    probabilities, features = classifier.predict(images)
    row = quality(probabilities, features, classifier.reference, labels, classifier.record.get("held_out_cfid"),
                  reals)
    if train is not None and unseen is not None:
        row.update(memorisation(nearest_distances(images, train), nearest_distances(unseen[:len(images)], train)))
    return row


def baseline_rows(classifier: Classifier, data: MNIST, n: int = 10_000, seed: int = 0) -> dict:
    """The rows every model is compared with: held-out real images and uniform noise, and real cFID by N."""
    held_out, train = data.x_train[-HOLDOUT:], data.x_train[:-HOLDOUT]
    _, features = classifier.predict(held_out)
    by_n = {}
    for size in (2_000, n):  # mean over disjoint subsets: the value a model's cFID at that N is divided by
        parts = [features[i:i + size] for i in range(0, len(features) - size + 1, size)]
        by_n[str(size)] = float(np.mean([frechet_distance(*gaussian(p), classifier.reference["mu"],
                                                          classifier.reference["sigma"]) for p in parts]))
    classifier.record["held_out_cfid"] = by_n
    # Precision/recall/density/coverage of held-out real digits at the Evaluator's N = 2,000 (against the shipped
    # bank, as during training; mean over the disjoint subsets) and at n (against the first n test images, as
    # `evaluate --data`): what a model's values at that N compare with.
    test = real_features(classifier, data, n)
    prdc_by_n = {}
    for size, reals in ((2_000, classifier.bank), (n, test)):
        if reals is None or len(reals) < size:
            continue
        parts = [features[i:i + size] for i in range(0, len(features) - size + 1, size)]
        rows = [prdc(reals[:size], p) for p in parts]
        prdc_by_n[str(size)] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    noise = np.random.default_rng(seed).uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32)
    # the held-out images are compared with the training images minus themselves, so both rows mean the same
    rows = {"held-out real": score(classifier, held_out[:n], train=train, unseen=data.x_test, reals=test),
            "uniform noise": score(classifier, noise, train=data.x_train, unseen=data.x_test, reals=test)}
    return {"held_out_cfid": by_n, "held_out_prdc": prdc_by_n, "reference_rows": rows}


# --- scoring generators, during training and after -------------------------------------------------------------

def sample_inputs(seed: int, n: int, latent_dim: int, conditional: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Fixed latents (and, for conditional models, labels cycling through 0-9: an unconditional draw)."""
    from mnist_gan.images import latents

    return latents(seed, n, latent_dim), default_labels(n) if conditional else None


class Evaluator:
    """What the Trainer calls every eval_every steps: a cheap quality row (default 2,000 fixed samples), with the
    share of near duplicates among them (a collapse's sign; see alarms)."""

    def __init__(self, classifier: Classifier | None = None, n: int = 2_000, seed: int = 12345):
        self.classifier = classifier or Classifier.load()
        self.n, self.seed = n, seed
        self._duplicate_distance: float | None = None

    def inputs(self, config) -> tuple[np.ndarray, np.ndarray | None]:
        """The fixed latents (and labels) every evaluation of a run draws."""
        return sample_inputs(self.seed, self.n, config.latent_dim, config.conditional)

    def duplicate_distance(self) -> float:
        """How close in feature space a real digit's nearest real neighbour is in 1% of cases: real digits from the
        bundled sample, as many as the evaluation draws (nearest distances shrink as a set grows)."""
        if self._duplicate_distance is None:
            from mnist_gan.data import SAMPLE_DATA, load_mnist

            real = load_mnist(SAMPLE_DATA).x_train[: self.n]
            self._duplicate_distance = real_threshold(self.classifier.predict(real)[1])
        return self._duplicate_distance

    def __call__(self, generator: Generator) -> dict:
        z, labels = self.inputs(generator.config)
        started = time.perf_counter()
        probabilities, features = self.classifier.predict(generator.images(z, labels))
        bank = self.classifier.bank
        reals = bank[:self.n] if bank is not None and len(bank) >= self.n else None  # equal sizes, or none
        row = quality(probabilities, features, self.classifier.reference, labels,
                      self.classifier.record.get("held_out_cfid"), reals)
        row["duplicates"], row["duplicate_pairs"] = near_duplicates(features, self.duplicate_distance())
        row["eval_s"] = time.perf_counter() - started
        return row
