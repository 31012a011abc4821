"""Quality metrics against closed forms and hand-computed cases; the shipped judge on the shipped test subset."""

import json

import numpy as np
import pytest

from mnist_gan import metrics
from mnist_gan.config import GANConfig
from mnist_gan.errors import InvalidInput
from mnist_gan.events import Quality
from mnist_gan.sampling import to_uint8
from mnist_gan.trainer import BEST_DIR, Trainer
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
    best = min(events, key=lambda e: e.metrics["cfid"])
    record = json.loads((tmp_path / "run" / BEST_DIR / "training.json").read_text())
    assert record["best"]["step"] == best.step and record["best"]["cfid"] == pytest.approx(best.metrics["cfid"])


def test_evaluate_samples_file_prints_json_and_a_table(tiny_data, tmp_path):
    npz = tmp_path / "real.npz"
    np.savez(npz, images=to_uint8(tiny_data.x_test), labels=tiny_data.y_test)
    out = cli("evaluate", "--samples", npz, "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)[str(npz)]
    assert row["n"] == 1000 and row["label_agreement"] > 0.98 and "nn_ratio" not in row  # no data: no memorisation
    out = cli("evaluate", "--samples", npz, "--n", 300)
    assert out.returncode == 0 and "| set | n | cfid" in out.stdout and "| 300 |" in out.stdout
    assert "memorisation not computed" in out.stdout
    assert not list(tmp_path.glob("*.json"))  # evaluate writes nothing without --write


def test_evaluate_errors_are_one_clear_line(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, pictures=np.zeros((2, 28, 28), np.uint8))
    out = cli("evaluate", "--samples", bad)
    assert out.returncode == 2 and "has no 'images' array" in out.stderr and "Traceback" not in out.stderr
