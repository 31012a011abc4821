"""Results kept by request: an identical generate, latent or interpolate answers from the file it made before,
without running the model again; what names a result changes with everything its pixels depend on."""

import os
import shutil

import httpx
import numpy as np
import pytest

from mnist_gan.model.generator import WEIGHTS_FILE, shipped_models
from mnist_gan.serving.drawing import ALL_DIGITS, Drawing
from mnist_gan.serving.library import Library
from mnist_gan.serving.served_files import ResultFiles
from testing.app import rest_call


def _no_classifier():
    raise AssertionError("the shipped models carry their directions: no classifier is needed")


def test_a_request_is_made_once_while_its_files_are_kept(tmp_path):
    files, made = ResultFiles(tmp_path, 10**6), []

    def make():
        made.append(1)
        return (files.write(b"picture %d" % len(made), ".png"),)

    first = files.remembered(("grid", "k"), make)
    assert files.remembered(("grid", "k"), make) == first and len(made) == 1
    assert files.remembered(("digit", "k"), make) != first and len(made) == 2  # another kind, another result
    os.remove(first[0])  # trimmed since: made again, not a dead link
    again = files.remembered(("grid", "k"), make)
    assert len(made) == 3 and os.path.exists(again[0])
    files.remembered(("grid", None), make), files.remembered(("grid", None), make)
    assert len(made) == 5  # a result that may change under the same request is never kept


def test_the_key_names_the_pixels(tmp_path):
    drawing = Drawing(Library(), _no_classifier)
    grid = drawing.grid_request("mlp-uncond", 7, 16)
    assert drawing.grid_request("mlp-uncond", 7.0, 16, ALL_DIGITS, 1.0).key() == grid.key()
    others = [drawing.grid_request("mlp-uncond", 8, 16), drawing.grid_request("mlp-uncond", 7, 15),
              drawing.grid_request("mlp-uncond", 7, 16, temperature=0.9), drawing.grid_request("classic", 7, 16),
              drawing.grid_request("mlp-uncond", 7, 16, scale=3), drawing.grid_request("mlp-cond", 7, 16),
              drawing.grid_request("mlp-cond", 7, 16, "4")]
    assert len({grid.key(), *(other.key() for other in others)}) == 1 + len(others)

    digit = drawing.latent_request("mlp-cond", 3, "5", "directions", [1.0, -0.5])
    assert drawing.latent_request("mlp-cond", 3, "5", "directions", [1.0, -0.5, 0.0]).key() == digit.key()
    for other in [drawing.latent_request("mlp-cond", 3, "6", "directions", [1.0, -0.5]),
                  drawing.latent_request("mlp-cond", 3, "5", "directions", [1.0, -0.4]),
                  drawing.latent_request("mlp-cond", 3, "5", "raw", [1.0, -0.5]),
                  drawing.latent_request("mlp-cond", 4, "5", "directions", [1.0, -0.5])]:
        assert other.key() != digit.key()
    strip = drawing.interpolation_request("classic", 1, 2, 8, "0")
    assert strip.key() == drawing.interpolation_request("classic", 1, 2, 8, "3").key()  # unconditional: no digit
    assert strip.key() != drawing.interpolation_request("classic", 1, 2, 9, "0").key()
    np.testing.assert_array_equal(drawing.draw(grid), drawing.generate("mlp-uncond", 7, 16))

    # a model's weights rewritten under the same name (a resumed run): new pixels, a new key
    folder = tmp_path / "m"
    shutil.copytree(shipped_models()["classic"], folder)
    mine = Drawing(Library({"m": folder}), _no_classifier)
    before = mine.grid_request("m", 7, 16).key()
    shutil.copyfile(shipped_models()["mlp-uncond"] / WEIGHTS_FILE, folder / WEIGHTS_FILE)
    os.utime(folder / WEIGHTS_FILE, ns=(1, 1))
    assert mine.grid_request("m", 7, 16).key() != before


@pytest.fixture(scope="module")
def web(app_server):
    app, url = app_server
    with httpx.Client(timeout=60) as client:
        yield app, url, client


def _counting(monkeypatch, generator) -> list:
    """Counts the generator's model calls (every drawing goes through images)."""
    calls, images = [], generator.images
    monkeypatch.setattr(generator, "images", lambda *a, **k: calls.append(1) or images(*a, **k))
    return calls


@pytest.mark.parametrize("endpoint, args, other", [
    ("generate", ["mlp-uncond", 4101, 64, ALL_DIGITS, 1.0], ["mlp-uncond", 4102, 64, ALL_DIGITS, 1.0]),
    ("latent", ["mlp-uncond", 4101, "0", "directions", [1.5, 0, -2]], ["mlp-uncond", 4101, "0", "directions", [1.5]]),
    ("interpolate", ["mlp-uncond", 4101, 4102, 8, "0"], ["mlp-uncond", 4101, 4102, 9, "0"]),
])
def test_an_identical_request_runs_no_model(web, monkeypatch, endpoint, args, other):
    app, url, client = web
    calls = _counting(monkeypatch, app.service.library.get("mlp-uncond"))
    answers = []
    for n, data in enumerate([args, args, other, args]):
        kind, value = rest_call(client, url, endpoint, data, session=f"results-{n}")  # another visitor each time
        assert kind == "complete", value
        answers.append([client.get(v["url"]).content for v in value])
    assert len(calls) == 2  # the first request and the other one: the repeats drew nothing
    assert answers[0] == answers[1] == answers[3] != answers[2]


def test_a_permalink_reads_the_grid_generate_made(web, monkeypatch):
    app, url, client = web
    calls = _counting(monkeypatch, app.service.library.get("mlp-uncond"))
    kind, value = rest_call(client, url, "generate", ["mlp-uncond", 4201, 36, ALL_DIGITS, 0.8], session="results")
    assert kind == "complete", value
    png = client.get(f"{url}png?seed=4201&n=36&temperature=0.8")
    assert png.status_code == 200 and png.content == client.get(value[0]["url"]).content
    assert client.get(f"{url}png?seed=4201&n=36&temperature=0.8").content == png.content
    assert len(calls) == 1
