"""Quality metrics against closed forms and hand-computed cases; the shipped judge on the shipped test subset."""

import json

import numpy as np
import pytest

from mnist_gan.config import GANConfig
from mnist_gan.errors import InvalidInput
from mnist_gan.images import to_uint8
from mnist_gan.quality import metrics
from mnist_gan.training.events import Quality
from mnist_gan.training.trainer import BEST_DIR, Trainer
from testing.system import cli

# --- Frechet distance --------------------------------------------------------------------------------------


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    assert metrics.frechet_distance([0.0], [[1.0]], [1.0], [[4.0]]) == pytest.approx(1 + (1 - 2) ** 2)
    # diagonal: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want)


def test_frechet_distance_with_covariances_that_do_not_commute():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((6, 6))
    sigma = m @ m.T + 0.5 * np.eye(6)  # dense, symmetric positive definite
    mu = rng.standard_normal(6)
    # sigma and its inverse: (sigma sigma^-1)^1/2 = I, so the cross term is the dimension
    want = np.trace(sigma) + np.trace(np.linalg.inv(sigma)) - 2 * 6
    assert metrics.frechet_distance(mu, sigma, mu, np.linalg.inv(sigma)) == pytest.approx(want, rel=1e-6)
    # sigma and c * sigma: Tr(sigma)(1 - sqrt(c))^2, plus the mean term
    shift = np.ones(6)
    want = 6 + np.trace(sigma) * (1 - np.sqrt(3.0)) ** 2
    assert metrics.frechet_distance(mu, sigma, mu + shift, 3 * sigma) == pytest.approx(want, rel=1e-6)


def test_sampled_gaussians_converge_to_the_closed_form_and_identical_sets_give_zero():
    rng = np.random.default_rng(1)
    n, d = 200_000, 4
    x = rng.standard_normal((n, d))
    y = 2.0 * rng.standard_normal((n, d)) + 0.5
    closed_form = d * 0.5**2 + d * (1 - 2) ** 2
    assert metrics.frechet_distance(*metrics.gaussian(x), *metrics.gaussian(y)) == pytest.approx(closed_form, rel=0.02)
    features = rng.standard_normal((500, 32))
    assert abs(metrics.frechet_distance(*metrics.gaussian(features), *metrics.gaussian(features))) < 1e-8


# --- classifier-probability metrics ------------------------------------------------------------------------


def _one_hot(classes):
    return np.eye(10)[np.asarray(classes)]


def test_classifier_score_is_ten_for_confident_balanced_digits_and_one_without_information():
    assert metrics.classifier_score(_one_hot(np.arange(100) % 10)) == pytest.approx(10, rel=1e-6)
    assert metrics.classifier_score(_one_hot([3] * 50)) == pytest.approx(1.0)  # one class: p(y|x) = p(y)
    assert metrics.classifier_score(np.full((20, 10), 0.1)) == pytest.approx(1.0)  # no confidence at all
    # two classes, equally often, each sample confident: exp(log 2) = 2
    assert metrics.classifier_score(_one_hot([1, 7] * 10)) == pytest.approx(2.0, rel=1e-6)


def test_recognisable_histogram_kl_and_label_agreement_by_hand():
    p = np.full((4, 10), 0.01)
    p[0, 2], p[1, 2], p[2, 5], p[3, 9] = 0.91, 0.89, 0.95, 0.5  # only rows 0 and 2 exceed 0.9
    assert metrics.recognisable(p) == 0.5
    np.testing.assert_allclose(metrics.class_histogram(p), [0, 0, 0.5, 0, 0, 0.25, 0, 0, 0, 0.25])
    # 0.5 log(5) + 2 * 0.25 log(2.5)
    assert metrics.kl_from_uniform(metrics.class_histogram(p)) == pytest.approx(0.5 * np.log(5) + 0.5 * np.log(2.5))
    assert metrics.kl_from_uniform(np.full(10, 0.1)) == pytest.approx(0.0)
    assert metrics.kl_from_uniform(np.eye(10)[4]) == pytest.approx(np.log(10))
    assert metrics.label_agreement(p, [2, 0, 5, 9]) == 0.75


def test_nearest_distances_and_memorisation_by_hand():
    train = np.zeros((3, 28, 28), np.uint8)
    train[1, :2, :] = 255  # 56 white pixels
    train[2] = 255
    queries = np.zeros((2, 28, 28), np.uint8)
    queries[0, 0, :4] = 255  # 4 pixels away from the black image: distance 2
    queries[1, :2, :] = 255  # an exact copy of train[1]
    np.testing.assert_allclose(metrics.nearest_distances(queries, train), [2.0, 0.0], atol=1e-5)
    # float [-1, 1] input means the same pixels
    as_float = queries.astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(metrics.nearest_distances(as_float, train), [2.0, 0.0], atol=1e-5)

    real = np.linspace(5, 10, 101)  # 1st percentile 5.05
    row = metrics.memorisation(np.array([0.0, 5.0, 7.5, 9.0]), real)
    assert row["near_copies"] == 0.5 and row["nn_train_median"] == pytest.approx(6.25)
    assert row["nn_ratio"] == pytest.approx(6.25 / 7.5)


# --- precision / recall (k-NN manifolds) and density / coverage ---------------------------------------------

# A tiny 2-D example, by hand. Real points r0..r3, generated points f0..f2:
REAL = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [5.0, 5.0]])
FAKE = np.array([[1.0, 1.0], [0.0, 4.5], [9.0, 9.0]])
# distances between reals: r0-r1 2, r0-r2 3, r0-r3 sqrt 50, r1-r2 sqrt 13, r1-r3 sqrt 34, r2-r3 sqrt 29


def test_knn_radii_by_hand():
    # nearest other point: r0 2 (r1), r1 2 (r0), r2 3 (r0), r3 sqrt 29 (r2)
    np.testing.assert_allclose(metrics.knn_radii(REAL, 1), [2, 2, 3, np.sqrt(29)])
    # second nearest: r0 3 (r2), r1 sqrt 13 (r2), r2 sqrt 13 (r1), r3 sqrt 34 (r1)
    np.testing.assert_allclose(metrics.knn_radii(REAL, 2), [3, np.sqrt(13), np.sqrt(13), np.sqrt(34)])
    # the same in blocks of one row (the bounded-memory path)
    np.testing.assert_allclose(metrics.knn_radii(REAL, 2, chunk=1), metrics.knn_radii(REAL, 2))
    with pytest.raises(ValueError, match="k-NN"):
        metrics.knn_radii(REAL, 4)  # only 3 other points


def test_precision_recall_density_coverage_by_hand():
    # k = 1, real radii 2, 2, 3, sqrt 29 = 5.385. Distances of the fakes to r0..r3:
    #   f0 (1, 1):   sqrt 2, sqrt 2, sqrt 5, sqrt 32   -> inside the balls of r0, r1, r2
    #   f1 (0, 4.5): 4.5, sqrt 24.25, 1.5, sqrt 25.25  -> inside r2's (1.5 < 3) and r3's (5.025 < 5.385)
    #   f2 (9, 9):   sqrt 162, sqrt 130, sqrt 117, sqrt 32 = 5.657 -> none (r3's radius is 5.385)
    # precision 2/3; density (3 + 2 + 0) / (1 * 3) = 5/3; coverage: r0, r1, r2 (f0) and r3 (f1) hit: 1.
    # Fake radii (k = 1): f0 sqrt 13.25 = 3.640 (f1), f1 3.640 (f0), f2 sqrt 101.25 = 10.06 (f1). Every real point
    # lies in one: r0, r1 at sqrt 2 and r2 at sqrt 5 of f0, r3 at sqrt 32 of f2: recall 1.
    row = metrics.prdc(REAL, FAKE, k_pr=1, k_dc=1)
    assert row == pytest.approx({"precision": 2 / 3, "recall": 1.0, "density": 5 / 3, "coverage": 1.0})
    # the two halves alone, and the roles swapped: precision and recall trade places
    assert metrics.precision_recall(REAL, FAKE, k=1) == pytest.approx({"precision": 2 / 3, "recall": 1.0})
    assert metrics.precision_recall(FAKE, REAL, k=1) == pytest.approx({"precision": 1.0, "recall": 2 / 3})


def test_a_subset_has_full_precision_and_partial_recall():
    # reals a (0, 0), b (2, 0), c (0, 3), d (6, 0), e (6, 4); the generated set is a subset: a, b, c.
    real = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [6.0, 0.0], [6.0, 4.0]])
    fake = real[:3]
    # k = 2: every fake is a real point, inside its own ball: precision 1. The fakes' radii (2nd nearest of the
    # other two): a 3 (c), b sqrt 13 (c), c sqrt 13 (b). d is 6, 4 and sqrt 45 away from a, b, c and e is sqrt 52,
    # sqrt 32 and sqrt 45 away: both outside every fake ball, so recall 3/5.
    assert metrics.precision_recall(real, fake, k=2) == pytest.approx({"precision": 1.0, "recall": 0.6})
    # at the default k (3 and 5): a model that draws only half of the real distribution (x < 0) is precise but
    # recalls about half of it (51.5% of these reals have x < 0; those near the cut are recalled too)
    bigger = np.random.default_rng(2).standard_normal((400, 3))
    row = metrics.prdc(bigger, bigger[bigger[:, 0] < 0])
    assert row["precision"] == 1.0 and 0.515 <= row["recall"] < 0.7 and 0.515 <= row["coverage"] < 0.7


def test_identical_sets_score_one_and_far_apart_sets_zero():
    x = np.random.default_rng(0).standard_normal((300, 8))
    # identical: every point is inside its own ball (precision, recall, coverage 1), and each point lies in its own
    # ball and in the balls of exactly the k - 1 points it is strictly nearer to than their k-th neighbour, so the
    # counts sum to k N: density exactly 1
    assert metrics.prdc(x, x) == pytest.approx({"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0})
    # far apart: no ball reaches the other set
    assert metrics.prdc(x, x + 1000.0) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_density_and_coverage_are_not_fooled_by_real_outliers():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((2000, 2))
    # Three real outliers far from the rest have k-NN balls of radius ~20. Samples drawn in the empty space near
    # one of them are all inside its ball (precision 1), but in one ball only, not the k a point on the real
    # manifold is in: density 1/5. They sit near no real digit's own neighbourhood: coverage ~0.
    with_outliers = np.concatenate([real, [[15.0, 15.0], [-15.0, 15.0], [15.0, -15.0]]])
    row = metrics.prdc(with_outliers, np.array([8.0, 8.0]) + 0.5 * rng.standard_normal((500, 2)))
    assert row["precision"] == 1.0 and row["density"] == pytest.approx(0.2) and row["coverage"] < 0.001
    # a model that draws near the mode only (a tenth of the variance): precise, but recalls and covers half at most
    row = metrics.prdc(real, 0.3 * rng.standard_normal((2000, 2)))
    assert row["precision"] > 0.95 and row["coverage"] < 0.5 and row["recall"] < 0.6
    # two samples of one distribution agree on everything to a few per cent at this size
    row = metrics.prdc(real, rng.standard_normal((2000, 2)))
    assert 0.9 < row["precision"] < 1.0 and 0.9 < row["recall"] < 1.0
    assert 0.9 < row["density"] < 1.1 and 0.9 < row["coverage"] < 1.0


def test_float_images_outside_the_pixel_range_are_refused():
    with pytest.raises(InvalidInput, match=r"in \[-1, 1\]"):
        metrics.as_unit_range(np.full((1, 28, 28), 3.0, np.float32))


# --- the shipped classifier --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def judge():
    return metrics.Classifier.load()


def test_shipped_classifier_is_small_accurate_and_has_a_feature_layer(judge, tiny_data):
    size = sum(p.stat().st_size for p in metrics.CLASSIFIER_DIR.iterdir())
    assert size < 2_000_000
    assert judge.record["test_accuracy"] >= 0.992 and judge.record["test_images"] == 10_000
    probabilities, features = judge.predict(tiny_data.x_test)  # 1,000 real test images shipped with the tests
    accuracy = np.mean(probabilities.argmax(1) == tiny_data.y_test)
    assert accuracy >= 0.985, accuracy
    assert features.shape == (1000, 128)
    assert judge.model.get_layer(metrics.FEATURE_LAYER).output.shape[-1] == 128
    # uint8 and [-1, 1] inputs are the same images
    np.testing.assert_allclose(judge.predict(to_uint8(tiny_data.x_test[:20]))[0], probabilities[:20],
                               atol=1e-5)


def test_real_digits_score_far_better_than_noise(judge, tiny_data):
    real = metrics.score(judge, tiny_data.x_test, labels=tiny_data.y_test, train=tiny_data.x_train[1000:],
                         unseen=tiny_data.x_train[:1000])
    noise = np.random.default_rng(0).uniform(-1, 1, (1000, 28, 28, 1)).astype(np.float32)
    fake = metrics.score(judge, noise)
    assert real["n"] == fake["n"] == 1000
    assert real["recognisable"] > 0.95 and real["label_agreement"] > 0.98 and real["classifier_score"] > 9
    assert real["class_min"] > 0.05 and len(real["class_histogram"]) == 10
    assert fake["cfid"] > 20 * real["cfid"]
    assert 0.5 < real["nn_ratio"] < 2  # test images are no nearer the training set than other training images


def test_recorded_reference_rows(judge):
    rows = judge.record["reference_rows"]
    real, noise = rows["held-out real"], rows["uniform noise"]
    assert real["n"] == noise["n"] == 10_000
    assert real["cfid"] == pytest.approx(judge.record["held_out_cfid"]["10000"])
    assert real["recognisable"] > 0.97 and real["class_max"] < 0.13 and noise["cfid"] > 100 * real["cfid"]
    # precision/recall/density/coverage of held-out real digits against the first 10,000 test images in
    # real_order (all of them): the reference row; noise lands in no real neighbourhood
    assert real["prdc_real_n"] == 10_000 and 0.8 < real["precision"] < 1 and 0.8 < real["recall"] < 1
    assert 0.9 < real["density"] < 1.1 and 0.9 < real["coverage"] < 1
    assert noise["precision"] == noise["recall"] == noise["density"] == noise["coverage"] == 0
    by_n = judge.record["held_out_prdc"]
    assert by_n["10000"] == pytest.approx({k: real[k] for k in ("precision", "recall", "density", "coverage")})
    assert set(by_n["2000"]) == {"precision", "recall", "density", "coverage"}


def test_shipped_feature_bank_is_real_test_digits(judge, tiny_data):
    with np.load(metrics.CLASSIFIER_DIR / metrics.BANK_FILE) as npz:
        features, indices = npz["features"], npz["indices"]
    assert features.dtype == np.float16 and features.shape == (metrics.BANK, 128)
    np.testing.assert_array_equal(indices, metrics.real_order(10_000)[:metrics.BANK])
    assert judge.bank.shape == (metrics.BANK, 128)
    # 1,000 other real digits (the tests' subset) sit on the bank's manifold, and cover it as well as real digits do
    _, tiny = judge.predict(tiny_data.x_test)
    row = metrics.prdc(judge.bank[:1000], tiny)
    assert row["precision"] > 0.75 and row["recall"] > 0.75 and row["coverage"] > 0.85


# --- during training, and from the command line ------------------------------------------------------------


def test_trainer_emits_quality_events_and_keeps_the_best_sampler(judge, tiny_data, tmp_path):
    config = GANConfig(batch_size=16, steps=20, eval_every=10, sample_every=10, checkpoint_every=10)
    trainer = Trainer(config, tiny_data, tmp_path / "run", evaluator=metrics.Evaluator(judge, n=200))
    events = []
    trainer.subscribe(lambda e: events.append(e) if isinstance(e, Quality) else None)
    trainer.run()
    assert [e.step for e in events] == [10, 20]
    for e in events:
        q = e.metrics
        assert q["n"] == 200 and len(q["class_histogram"]) == 10 and sum(q["class_histogram"]) == pytest.approx(1)
        assert np.isfinite(q["cfid"]) and 1 <= q["classifier_score"] <= 10
        # against the shipped bank's first 200 real digits
        assert q["prdc_real_n"] == 200 and all(0 <= q[k] <= 1 for k in ("precision", "recall", "coverage"))
    best = min(events, key=lambda e: e.metrics["cfid"])
    record = json.loads((tmp_path / "run" / BEST_DIR / "training.json").read_text())
    assert record["best"]["step"] == best.step and record["best"]["cfid"] == pytest.approx(best.metrics["cfid"])


@pytest.mark.slow
def test_evaluate_samples_file_prints_json_and_a_table(tiny_data, tmp_path):
    npz = tmp_path / "real.npz"
    np.savez(npz, images=to_uint8(tiny_data.x_test), labels=tiny_data.y_test)
    out = cli("evaluate", "--samples", npz, "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)[str(npz)]
    assert row["n"] == 1000 and row["label_agreement"] > 0.98 and "nn_ratio" not in row  # no data: no memorisation
    assert row["prdc_real_n"] == 1000 and row["precision"] > 0.75 and row["coverage"] > 0.85  # the shipped bank
    out = cli("evaluate", "--samples", npz, "--n", 300)
    assert out.returncode == 0 and "| set | n | cfid" in out.stdout and "| 300 |" in out.stdout
    assert "| precision | recall | density | coverage |" in out.stdout
    assert "memorisation not computed" in out.stdout
    assert not list(tmp_path.glob("*.json"))  # evaluate writes nothing without --write


def test_evaluate_errors_are_one_clear_line(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, pictures=np.zeros((2, 28, 28), np.uint8))
    out = cli("evaluate", "--samples", bad)
    assert out.returncode == 2 and "has no 'images' array" in out.stderr and "Traceback" not in out.stderr
