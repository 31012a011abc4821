"""The service without a server: every action as plain Python, checked against the package's own pixels."""

import threading

import numpy as np
import pytest

from mnist_gan.access import ANONYMOUS, Visitor
from mnist_gan.checks import digit, whole
from mnist_gan.config import GANConfig, recipe
from mnist_gan.data import mnist_label
from mnist_gan.errors import AccessDenied, ConfigError, InvalidInput, UnknownModel
from mnist_gan.images import make_grid
from mnist_gan.model.generator import DEFAULT_MODEL, Generator, shipped_models
from mnist_gan.once import OncePerKey
from mnist_gan.service import AppSettings, Service
from mnist_gan.serving.drawing import display_scale, grid_labels


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    service = Service(AppSettings(runs_dir=tmp_path_factory.mktemp("runs")))
    yield service
    service.close()


def test_building_a_service_starts_nothing(tmp_path):
    before = threading.active_count()
    service = Service(AppSettings(runs_dir=tmp_path / "runs"))
    assert threading.active_count() == before and service.notice == ""
    assert service.training.status().run is None and not (tmp_path / "runs").exists()
    service.start()  # no MNIST_GAN_REPO: nothing to pull
    assert service.notice == ""


def test_settings_come_from_the_environment(tmp_path):
    settings = AppSettings.from_env({"MNIST_GAN_RUNS": str(tmp_path), "MNIST_GAN_DATA": "/d.npz", "SYSTEM": "spaces",
                                  "MNIST_GAN_REPO": "a/b"})
    assert settings.runs_dir == tmp_path and settings.data == "/d.npz" and settings.on_space
    assert settings.startup_repo == "a/b" and settings.startup_revision == "main"


def test_generate_draws_the_packages_pixels(service):
    classic = Generator.load(shipped_models()["classic"])
    grid = service.drawing.generate("classic", 11, 16)
    np.testing.assert_array_equal(grid, make_grid(classic.generate(11, 16), 4, 4, scale=display_scale(4)))
    assert service.library.catalog()[0]["name"] == DEFAULT_MODEL


@pytest.mark.parametrize("args, error, message", [
    (("classic", -1, 4), InvalidInput, "seed must be between 0 and 4294967295, got -1"),
    (("classic", 0, 0), InvalidInput, "grid size must be a whole number from 1 to 100, got 0"),
    (("classic", 0, 4, "all digits", 2.5), InvalidInput, "temperature must be a number from 0.1 to 2, got 2.5"),
    (("classic", 0, 4, "3"), InvalidInput, "classic is unconditional"),
    (("nope", 0, 4), UnknownModel, "unknown model 'nope'"),
])
def test_bad_values_are_refused_by_name(service, args, error, message):
    with pytest.raises(error, match=message):
        service.drawing.generate(*args)


def test_grid_policy_for_conditional_models():
    config = GANConfig(conditional=True)
    generator = type("G", (), {"config": config, "name": "cond"})()
    labels, rows, cols = grid_labels(generator, "all digits", 12)
    assert (rows, cols) == (10, 2) and labels.tolist() == [d for d in range(10) for _ in range(2)]
    labels, rows, cols = grid_labels(generator, 3, 4)  # an API caller may send the number
    assert labels.tolist() == [3] * 4 and (rows, cols) == (2, 2)
    with pytest.raises(InvalidInput, match="digit must be one of 0-9"):
        grid_labels(generator, "x" * 10_000, 4)
    assert whole(3.0, "n", 1, 5) == 3
    for bad in (True, 2.5, float("nan"), "3", 6):
        with pytest.raises(InvalidInput, match="n must be a whole number from 1 to 5"):
            whole(bad, "n", 1, 5)


def test_latent_and_interpolation(service):
    directions = service.drawing.latent_directions("classic", "raw")
    assert [d["label"] for d in directions] == [f"z[{i}]" for i in range(16)]
    base = service.drawing.latent("classic", 7, "0", "raw", [])
    assert base.shape == (280, 280) and base.dtype == np.uint8
    assert not np.array_equal(base, service.drawing.latent("classic", 7, "0", "raw", [3.0]))
    strip, frames = service.drawing.interpolate("classic", 1, 2, 5, "0")
    classic = Generator.load(shipped_models()["classic"])
    np.testing.assert_array_equal(frames[0], classic.generate(1, 1)[0])
    assert strip.shape == (2 * 32, 2 * (5 * 30 + 2))
    with pytest.raises(InvalidInput, match="slider values must lie within"):
        service.drawing.latent("classic", 7, "0", "raw", [41])


def test_a_slow_result_is_computed_once_for_callers_that_ask_together():
    calls, gate = [], threading.Event()

    def compute(key):
        calls.append(key)
        gate.wait(10)
        return key * 2

    once = OncePerKey(size=2)
    results = []
    threads = [threading.Thread(target=lambda: results.append(once.get("a", lambda: compute("a")))) for _ in range(6)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert results == ["aa"] * 6 and calls == ["a"]
    once.get("b", lambda: compute("b")), once.get("c", lambda: compute("c"))  # the oldest is forgotten beyond `size`
    once.get("a", lambda: compute("a"))
    assert calls == ["a", "b", "c", "a"]


def test_train_start_refuses_before_starting_anything(service):
    for settings, error, message in [
        ({"data": "imagenet"}, InvalidInput, "data must be 'mnist' or 'sample'"),
        ({"data": "sample", "learning_rate": 1}, InvalidInput, "learning_rate is not a training setting"),
        ({"data": "sample", "steps": 0}, InvalidInput, "steps must be a whole number from 1 to 200000"),
        ({"data": "sample", "batch_size": 0}, ConfigError, "batch_size: must be between 1 and 4096"),
        ({"data": "sample", "recipe_name": "fancy"}, ConfigError, "recipe: unknown 'fancy'"),
    ]:
        with pytest.raises(error, match=message):
            service.training.start(ANONYMOUS, **settings)
    assert service.training.status().run is None


def test_recipes_and_their_one_rule():
    assert recipe("classic") == GANConfig()
    recommended = recipe()
    shipped = GANConfig.load(shipped_models()["mlp-cond"])  # the recommended recipe is how mlp-cond was trained
    for field in ("architecture", "conditional", "batch_size", "lr_g", "lr_d", "beta_1", "loss", "ema_decay"):
        assert getattr(recommended, field) == getattr(shipped, field), field
    # a latent code turns class labels off (they exclude each other), and the other way round
    assert not recipe(latent_code=10).conditional and recipe("classic", latent_code=10).latent_code == 10
    assert recipe("classic", conditional=True).latent_code == 0
    with pytest.raises(ConfigError, match="latent_code: a class-conditional model"):
        recipe(conditional=True, latent_code=10)


def test_admins_only_on_a_space_with_admins(service, monkeypatch):
    monkeypatch.setenv("MNIST_GAN_ADMINS", "alice")
    for action in (service.training.pause, service.training.stop, service.training.resume_run):
        with pytest.raises(AccessDenied, match="reserved to this Space's owners"):
            action(Visitor("bob"))
    with pytest.raises(AccessDenied):
        service.training.start(ANONYMOUS, data="sample")
    with pytest.raises(AccessDenied):
        service.hub.push(Visitor("bob"), "classic", "bob/x", "hf_token")


def test_what_a_run_trains_on_is_said_in_words(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, y_train=np.zeros(60_000, np.uint8))
    assert mnist_label(str(path)) == "MNIST, 60,000 images"
    assert mnist_label(None) == "MNIST, 60,000 images"
    assert mnist_label(str(tmp_path / "missing.npz")) == "MNIST" and str(tmp_path) not in mnist_label(str(path))


def test_a_digit_is_one_of_0_to_9_and_anything_else_a_plain_refusal():
    """"²" and "٣" are digits to str.isdigit() and int(): they once reached int() and answered "internal error"."""
    assert [digit(" 3 "), digit(7), digit(np.int64(0))] == [3, 7, 0]
    for value in ("²", "٣", "3.0", "10", "", True, 10, -1, 2.0, None):
        with pytest.raises(InvalidInput, match="digit must be one of 0-9"):
            digit(value)
