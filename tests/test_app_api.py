"""The app through gradio_client: every public endpoint of the launched server, checked as numbers."""

import json
import math
import re

import httpx
import huggingface_hub
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from mnist_gan.config import GANConfig
from mnist_gan.images import make_grid
from mnist_gan.inside.directions import measure
from mnist_gan.model import architectures
from mnist_gan.model.generator import DEFAULT_MODEL, Generator, save_models, shipped_models
from mnist_gan.service import AppSettings, Service
from mnist_gan.serving.library import Library
from mnist_gan.training.checkpoint import CHECKPOINT_FILE, load_meta
from testing.app import wait_for
from testing.hub_server import HubServer
from testing.system import wait_until

TOKEN = "hf_appTestWrite5Jq8sT2vX9mN0pL6"
PUBLIC = {"generate", "latent", "latent_directions", "interpolate", "models", "train_start", "train_pause",
          "train_resume", "train_stop", "train_resume_run", "train_status", "train_gif", "push", "pull",
          "train_step_once", "train_set", "train_fork", "train_inspection", "runs_list", "runs_compare", "atlas",
          "atlas_gif", "discriminate", "invert", "d_pull", "z_pull", "style_grid", "morph", "spot_round", "spot_answer",
          "model_card", "run_status"}


@pytest.fixture(scope="module")
def client(app_server, tmp_path_factory):
    _, url = app_server
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("dl")))


@pytest.fixture(scope="module")
def classic():
    return Generator.load(shipped_models()["classic"])


def png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("L"))


def test_every_action_is_a_named_endpoint_and_ui_events_are_private(client):
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {name.lstrip("/") for name in named} == PUBLIC


def test_models_lists_the_shipped_default_first(client):
    models = client.predict(api_name="/models")
    default = Generator.load(shipped_models()[DEFAULT_MODEL])
    assert models[0]["name"] == DEFAULT_MODEL and models[0]["source"] == "shipped"
    assert models[0]["latent_dim"] == default.config.latent_dim
    assert models[0]["conditional"] is default.config.conditional and models[0]["steps"] == default.record["steps"]
    classic = next(m for m in models if m["name"] == "classic")
    assert classic["conditional"] is False and classic["steps"] == 30000


@pytest.mark.parametrize("n, rows, cols, scale", [(1, 1, 1, 8), (16, 4, 4, 5), (64, 8, 8, 2), (100, 10, 10, 2)])
def test_generate_draws_the_requested_grid(client, classic, n, rows, cols, scale):
    image = png(client.predict(model="classic", seed=11, n=n, digit="all digits", temperature=1.0,
                               api_name="/generate"))
    assert image.shape == ((rows * 30 + 2) * scale, (cols * 30 + 2) * scale)
    # the same pixels as the package draws for that seed, tiled independently of the app
    np.testing.assert_array_equal(image, make_grid(classic.generate(11, n), rows, cols, scale=scale))


def test_generate_is_deterministic_per_seed_and_temperature(client):
    def draw(seed, temperature=1.0):
        return png(client.predict(model="classic", seed=seed, n=9, digit="all digits", temperature=temperature,
                                  api_name="/generate"))

    a = draw(123)
    np.testing.assert_array_equal(a, draw(123))
    assert np.mean(a != draw(124)) > 0.2
    assert np.mean(a != draw(123, temperature=0.3)) > 0.1
    assert draw(2**32 - 1).shape == a.shape  # the largest seed is accepted


def test_conditional_models_draw_the_chosen_digit_or_a_row_per_digit(client, app_server, tmp_path_factory):
    app, _ = app_server
    config = GANConfig(architecture="dcgan", conditional=True, latent_dim=32, seed=3)
    folder = save_models(tmp_path_factory.mktemp("cond") / "cond", config, architectures.build(config)[0])
    app.service.library.add("conditional-test", folder, "built by the tests")
    generator = Generator.load(folder)

    def draw(digit, n=12):
        return png(client.predict(model="conditional-test", seed=4, n=n, digit=digit, temperature=1.0,
                                  api_name="/generate"))

    np.testing.assert_array_equal(draw("3"), make_grid(generator.generate(4, 12, np.full(12, 3)), 3, 4, scale=5))
    rows = np.repeat(np.arange(10), 2)  # 12 asked for with all digits: 2 columns, one row per digit
    np.testing.assert_array_equal(draw("all digits"), make_grid(generator.generate(4, 20, rows), 10, 2, scale=8))
    assert not np.array_equal(draw("3"), draw("8"))
    directions = client.predict(model="conditional-test", mode="directions", api_name="/latent_directions")
    assert len(directions) == 8 and not any(d["label"].startswith("more like") for d in directions)
    one = dict(model="conditional-test", seed=4, mode="directions", amounts=[1.0], api_name="/latent")
    assert not np.array_equal(png(client.predict(digit="1", **one)), png(client.predict(digit="7", **one)))


def test_latent_directions_are_labelled_and_fit_the_model(client):
    directions = client.predict(model="classic", mode="directions", api_name="/latent_directions")
    labels = [d["label"] for d in directions]
    assert len(directions) == 16 and labels[0] == "thicker strokes" and "slant right" in labels
    assert [f"more like a {k}" for k in range(10)] == labels[6:]
    assert all(0.2 < d["r2"] <= 1 for d in directions)  # each measurement is partly linear in z
    raw = client.predict(model="classic", mode="raw", api_name="/latent_directions")
    assert [d["label"] for d in raw] == [f"z[{i}]" for i in range(16)]


def thickness(image: np.ndarray) -> float:
    """The directions module's stroke-thickness measurement of a 280x280 (10x) latent image."""
    digit = image[::10, ::10].astype(np.float32) / 127.5 - 1.0
    return float(measure(digit[None])["thicker strokes"][0])


def test_a_slider_moves_the_digit_the_way_its_label_says(client):
    def latent(amounts, mode="directions", seed=7):
        return png(client.predict(model="classic", seed=seed, digit="0", mode=mode, amounts=amounts,
                                  api_name="/latent"))

    base = latent([0] * 16)
    assert base.shape == (280, 280)
    np.testing.assert_array_equal(base, latent([]))  # omitted sliders are 0
    np.testing.assert_array_equal(base, latent([0] * 16, mode="raw"))  # no move: the seed's own latent
    thicker, thinner = latent([3]), latent([-3])
    assert np.mean(thicker != base) > 0.05 and np.mean(thinner != base) > 0.05
    assert thickness(thinner) < thickness(base) < thickness(thicker)
    assert np.mean(latent([0, 0, 2.5], mode="raw") != base) > 0.01  # z[2] alone changes the image
    assert np.mean(latent([0] * 16, seed=8) != base) > 0.05


def test_interpolate_gives_a_strip_from_seed_a_to_seed_b_and_a_gif(client, classic):
    strip_path, gif_path = client.predict(model="classic", seed_a=3, seed_b=4, frames=8, digit="0",
                                          api_name="/interpolate")
    strip = png(strip_path)
    assert strip.shape == (32 * 2, (8 * 30 + 2) * 2)
    first, last = strip[4:60, 4:60], strip[4:60, -60:-4]  # tiles 0 and 7, at scale 2
    np.testing.assert_array_equal(first, np.kron(classic.generate(3, 1)[0], np.ones((2, 2), np.uint8)))
    np.testing.assert_array_equal(last, np.kron(classic.generate(4, 1)[0], np.ones((2, 2), np.uint8)))
    with Image.open(gif_path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * 8 - 2  # there and back
        assert gif.size == (28 * 4, 28 * 4)


@pytest.mark.parametrize("endpoint, kwargs, message", [
    ("/generate", dict(seed=-1), "seed must be between 0 and 4294967295"),
    ("/generate", dict(seed=2**32), "seed must be between 0 and 4294967295"),
    ("/generate", dict(seed=1.5), "seed must be a whole number"),
    ("/generate", dict(n=101), "grid size must be a whole number from 1 to 100, got 101"),
    ("/generate", dict(n=2.5), "grid size must be a whole number from 1 to 100"),
    ("/generate", dict(model="nope"), f"unknown model 'nope'; choose one of: {DEFAULT_MODEL}"),
    ("/generate", dict(digit="3"), "unconditional: it cannot be asked for a digit"),
    ("/generate", dict(temperature=0.0), "temperature must be a number from 0.1 to 2, got 0.0"),
    ("/generate", dict(digit="x" * 100_000), "digit must be one of 0-9 or 'all digits', got 'xxxx"),
    ("/latent", dict(amounts=[0] * 17), "at most 16 numbers"),
    ("/latent", dict(amounts="thick"), "amounts must be a list"),
    ("/latent", dict(amounts="thick" * 40_000), "amounts must be a list of at most 16 numbers, got 'thickthick"),
    ("/latent", dict(mode="sideways"), "mode must be 'directions' or 'raw', got 'sideways'"),
    ("/latent", dict(amounts=[0, 41]), "within +-40"),
    ("/interpolate", dict(frames=1), "frames must be a whole number from 2 to 32, got 1"),
    ("/interpolate", dict(seed_b=-5), "seed must be between"),
])
def test_bad_input_gets_a_plain_message(client, endpoint, kwargs, message):
    defaults = {"/generate": dict(model="classic", seed=0, n=4, digit="all digits", temperature=1.0),
                "/latent": dict(model="classic", seed=0, digit="0", mode="directions", amounts=[0]),
                "/interpolate": dict(model="classic", seed_a=0, seed_b=1, frames=4, digit="0")}[endpoint]
    with pytest.raises(AppError, match=re.escape(message)) as error:
        client.predict(**{**defaults, **kwargs}, api_name=endpoint)
    assert "Traceback" not in str(error.value)
    assert len(str(error.value)) < 300  # a huge bad value is quoted cut short, not echoed in full
    assert client.predict(api_name="/models")[0]["name"] == DEFAULT_MODEL  # and the server is still serving


@pytest.mark.parametrize("data, message", [
    ('["classic", 0, "0", "directions", [0, NaN]]', "slider values must be finite numbers (no NaN or infinity)"),
    ('["classic", 0, "0", "directions", [Infinity]]', "slider values must be finite numbers (no NaN or infinity)"),
    ('["classic", NaN, "0", "directions", [0]]', "seed must be a whole number between 0 and 4294967295, got nan"),
])
def test_nan_and_infinity_get_a_plain_message(app_server, data, message):
    """gradio_client cannot send NaN (its JSON encoder refuses), so these go through the raw REST API."""
    _, url = app_server
    with httpx.Client(timeout=30) as http:
        event = http.post(url + "gradio_api/call/latent", content='{"data": %s}' % data,
                          headers={"content-type": "application/json"}).json()["event_id"]
        stream = http.get(url + f"gradio_api/call/latent/{event}").text
    assert stream.startswith("event: error") and json.loads(stream.split("data: ", 1)[1])["error"] == message


def test_training_controls_say_plainly_what_cannot_be_done(client):
    status = client.predict(api_name="/train_status")
    assert status["state"] in ("idle", "stopped", "finished", "failed")  # no other test's run is still going
    expected = "no run yet" if status["run"] is None else f"the run is {status['state']}"
    for action in ("pause", "resume", "stop"):
        with pytest.raises(AppError, match=f"cannot {action}: {expected}"):
            client.predict(api_name=f"/train_{action}")
    if status["run"] is None:
        assert status["step"] == 0 and status["history"] == []
        with pytest.raises(AppError, match="no sample grids yet"):
            client.predict(api_name="/train_gif")
    with pytest.raises(AppError, match="data must be 'mnist' or 'sample'"):
        client.predict(data="imagenet", api_name="/train_start")
    with pytest.raises(AppError, match="batch_size: must be between 1 and 4096"):
        client.predict(batch_size=0, data="sample", api_name="/train_start")
    with pytest.raises(AppError, match="architecture: unknown 'vit'"):
        client.predict(architecture="vit", data="sample", api_name="/train_start")
    with pytest.raises(AppError, match="latent_code: a class-conditional model is told the digit"):
        client.predict(conditional=True, latent_code=10, data="sample", api_name="/train_start")


@pytest.mark.slow
def test_a_tiny_run_reports_both_accuracies_and_obeys_pause_resume_stop(client, app_server):
    app, _ = app_server
    started = client.predict(architecture="classic", batch_size=16, steps=2000, data="sample", latent_code=10,
                             api_name="/train_start")
    assert started["state"] == "starting" and started["steps"] == 2000 and started["config"]["batch_size"] == 16
    assert started["config"]["latent_code"] == 10 and not started["config"]["conditional"]
    run = started["run"]
    with pytest.raises(AppError, match=f"a training run is in progress \\({run}"):
        client.predict(data="sample", api_name="/train_start")
    with pytest.raises(AppError, match="cannot resume: the run is"):
        client.predict(api_name="/train_resume")

    # bounds for a loaded 2-core machine (compilation, then an evaluation at 250 and an atlas at each grid)
    status = wait_for(client, lambda s: s["step"] >= 20, 300, "20 steps")
    assert status["state"] == "running" and status["run"] == run
    for key in ("d_acc_real", "d_acc_fake"):
        assert 0 <= status[key] <= 1
        assert all(0 <= row[key] <= 1 for row in status["history"])
    assert status["images_per_sec"] > 0 and status["eta_s"] > 0 and math.isfinite(status["g_loss"])
    assert [row["step"] for row in status["history"]] == sorted({row["step"] for row in status["history"]})

    assert client.predict(api_name="/train_pause")["state"] in ("pausing", "paused")
    paused = wait_for(client, lambda s: s["state"] == "paused", 600, "the pause")
    assert paused["saved_step"] == paused["step"]  # a pause saves the run
    run_dir = app.service.training.worker.runs_dir / run  # train_status shows visitors no server path
    assert "run_dir" not in paused and load_meta(run_dir / CHECKPOINT_FILE).step == paused["step"]
    still = client.predict(api_name="/train_status")  # (that the loop takes no step while paused: test_checkpoint)
    assert still["state"] == "paused" and still["step"] == paused["step"]

    assert client.predict(api_name="/train_resume")["state"] in ("resuming", "running")
    evaluated = app.service.training.evaluate  # quality rows need the shipped classifier
    target = 260 if evaluated else paused["step"] + 20
    status = wait_for(client, lambda s: s["step"] >= target, 300, f"step {target}")
    assert status["state"] == "running"
    if evaluated:
        quality = status["quality"]
        assert quality and quality[0]["step"] == 250 and quality[0]["n"] == 2000 and quality[0]["cfid"] > 0
        assert len(status["class_histogram"]) == 10 and abs(sum(status["class_histogram"]) - 1) < 1e-3
    else:
        assert status["quality"] == [] and status["class_histogram"] is None

    assert client.predict(api_name="/train_stop")["state"] in ("stopping", "stopped")
    stopped = wait_for(client, lambda s: s["state"] == "stopped", 600, "the stop")
    assert stopped["saved_step"] == stopped["step"] < 2000
    with pytest.raises(AppError, match="cannot stop: the run is stopped"):
        client.predict(api_name="/train_stop")

    # the stopped run becomes a model every endpoint can use
    wait_until(lambda: run in [m["name"] for m in client.predict(api_name="/models")], 30, "the run among the models")
    grid = png(client.predict(model=run, seed=1, n=4, digit="all digits", temperature=1.0, api_name="/generate"))
    expected = Generator.load(run_dir).generate(1, 4)
    np.testing.assert_array_equal(grid, make_grid(expected, 2, 2, scale=8))

    with Image.open(client.predict(api_name="/train_gif")) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(stopped["sample_steps"]) >= 2


def test_push_and_pull_through_a_local_hub(client, app_server, monkeypatch, tmp_path):
    app, _ = app_server
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the local server offers no Xet
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with HubServer({TOKEN: ("alice", True)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(AppError, match="needs a Hugging Face token") as error:
            client.predict(model="classic", repo_id="alice/digits", api_name="/push")
        with pytest.raises(AppError, match="refused the token") as error:
            client.predict(model="classic", repo_id="alice/digits", token="hf_wrongToken000000000000000",
                           api_name="/push")
        assert "hf_wrong" not in str(error.value)
        with pytest.raises(AppError, match="unknown model 'ghost'"):
            client.predict(model="ghost", repo_id="alice/digits", token=TOKEN, api_name="/push")

        pushed = client.predict(model="classic", repo_id="alice/digits", token=TOKEN, tag="v1", api_name="/push")
        assert re.fullmatch(r"[0-9a-f]{40}", pushed["commit_sha"]) and pushed["tag"] == "v1"
        assert pushed["url"] == f"{hub.url}/alice/digits/tree/{pushed['commit_sha']}"

        pulled = client.predict(repo_id="alice/digits", revision="v1", api_name="/pull")
        name = f"alice/digits@{pushed['commit_sha'][:7]}"
        assert pulled["model"] == name and pulled["commit_sha"] == pushed["commit_sha"]
        assert name in [m["name"] for m in client.predict(api_name="/models")]
        kwargs = dict(seed=5, n=9, digit="all digits", temperature=1.0, api_name="/generate")
        np.testing.assert_array_equal(png(client.predict(model=name, **kwargs)),
                                      png(client.predict(model="classic", **kwargs)))  # the same weights
        with pytest.raises(AppError, match="not found"):
            client.predict(repo_id="alice/nothing", api_name="/pull")

        # MNIST_GAN_REPO at start-up: the pulled model becomes the default, or a notice keeps the shipped one
        def started(**env) -> Service:
            service = Service(AppSettings.from_env({"MNIST_GAN_RUNS": str(tmp_path / "runs"), **env}), Library())
            service.start()
            return service

        service = started(MNIST_GAN_REPO="alice/digits", MNIST_GAN_REVISION=pushed["commit_sha"])
        assert service.notice.startswith(f"Loaded {name} from the Hub")
        assert service.library.default == name and service.library.get(name).config.architecture == "classic"
        service = started(MNIST_GAN_REPO="alice/missing")
        assert service.notice.startswith("Could not load alice/missing@main from the Hub")
        assert f"'{DEFAULT_MODEL}'" in service.notice and service.library.default == DEFAULT_MODEL


def test_requests_beyond_the_limits_are_refused_before_they_are_read(app_server):
    """A 1 MB value is refused from its Content-Length (gradio would parse it, then echo it whole in its error); the
    app answers on. (Uploads per client and minute, and bodies whose headers lie: tests/test_app_limits.py.)"""
    _, url = app_server
    with httpx.Client(timeout=60) as http:
        big = '{"data": ["classic", 0, 4, "%s", 1.0]}' % ("x" * 2**20)
        answer = http.post(url + "gradio_api/call/generate", content=big, headers={"content-type": "application/json"})
        assert answer.status_code == 413 and len(answer.content) < 200
        answer = http.post(url + "gradio_api/queue/join", content='{"data": ["%s"]}' % ("x" * 2**20),
                           headers={"content-type": "application/json"})
        assert answer.status_code == 413
    assert client_models(url)[0]["name"] == DEFAULT_MODEL


def client_models(url: str) -> list[dict]:
    return Client(url, verbose=False, analytics_enabled=False).predict(api_name="/models")


def test_models_show_no_server_path(client):
    for info in client.predict(api_name="/models"):
        assert "folder" not in info and not any("/" in str(v) and str(v).startswith("/") for v in info.values())


def test_every_element_id_names_one_element(app_server):
    """A page's ids must be its own: the Train form's seed once shared the id "seed" with Generate's, so a selector
    or a script found two (and whichever came first)."""
    from collections import Counter

    _, url = app_server
    config = httpx.get(url + "config", timeout=60).json()
    ids = Counter(c["props"].get("elem_id") for c in config["components"] if c["props"].get("elem_id"))
    assert len(ids) > 50 and not [i for i, n in ids.items() if n > 1], [i for i, n in ids.items() if n > 1]
