"""Results kept by request: an identical generate, latent or interpolate answers from the file it made before,
without running the model again; what names a result changes with everything its pixels depend on."""

import os
import shutil
import time

import httpx
import numpy as np
import pytest

from mnist_gan.model.generator import WEIGHTS_FILE, shipped_models
from mnist_gan.serving.drawing import ALL_DIGITS, Drawing
from mnist_gan.serving.library import Library
from mnist_gan.serving.served_files import NAME, ResultFiles, png_bytes
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



def test_a_rounds_pictures_each_have_a_random_name_of_their_own_and_stay_in_memory(tmp_path):
    """A spot-the-fake round's images: each under a random name of its own (the same digit twice is two names),
    the PNG the app serves, kept in memory only (creating 16 small files a round cost more CPU than drawing
    them): nothing is written to the folder, and the cap's index does not count them."""
    files = ResultFiles(tmp_path / "results", 10**6)
    digit = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    paths = files.pngs_once([digit, digit, 255 - digit])
    again = files.pngs_once([digit])
    assert len(set(paths + again)) == 4
    assert all(NAME.fullmatch(os.path.basename(p)) and os.path.dirname(p) == str(tmp_path / "results")
               for p in paths + again)
    assert [files.recent(os.path.basename(p)) for p in paths] == [png_bytes(digit), png_bytes(digit),
                                                                  png_bytes(255 - digit)]
    assert not (tmp_path / "results").exists() and files.trim(now=10**12) == []


def test_the_latest_results_are_kept_in_memory_up_to_a_bound(tmp_path, monkeypatch):
    """What the route sends from memory: the bytes of the files written last, the oldest dropped beyond the bound;
    a file written again (the same content) is kept once."""
    from mnist_gan.serving import served_files

    monkeypatch.setattr(served_files, "RECENT_BYTES", 2500)
    files = ResultFiles(tmp_path, 10**6)
    paths = [files.write(bytes([i]) * 1000, ".png") for i in range(3)]
    assert files.write(bytes([2]) * 1000, ".png") == paths[2]
    names = [os.path.basename(p) for p in paths]
    assert files.recent(names[0]) is None and os.path.exists(paths[0])  # dropped from memory, still on the disk
    assert files.recent(names[1]) == bytes([1]) * 1000 and files.recent(names[2]) == bytes([2]) * 1000
    (once,) = files.pngs_once([np.zeros((4, 4), np.uint8)])
    assert files.recent(os.path.basename(once)) == png_bytes(np.zeros((4, 4), np.uint8))
    files.write(bytes([3]) * 1000, ".png")
    assert files.recent(names[1]) is None and files.recent(names[2]) is not None
    assert files.recent("0" * 24 + ".png") is None


def test_the_results_folder_is_trimmed_oldest_first_by_what_was_written_without_reading_it(tmp_path, monkeypatch):
    """The cap goes by the files' index: written or served again (the youngest), oldest deleted first, none younger
    than MIN_AGE_S; files the folder held from before are older than all written since. Trimming reads nothing of
    the folder (under a class that was a stat a file, every few seconds)."""
    from mnist_gan.serving import served_files

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / ("e" * 24 + ".png")).write_bytes(b"x" * 1000)  # from the app's earlier run
    files = ResultFiles(folder, 3500)
    files.index_folder()
    paths = [files.write(bytes([i]) * 1000, ".png") for i in range(3)]
    assert files.trim(now=time.time()) == []  # over the cap, but every file is too young to go
    files.write(bytes([0]) * 1000, ".png")  # the first served again: now the youngest
    os.remove(paths[1])  # gone meanwhile (gradio's own cleanup by age)

    def no_reading(*args, **kwargs):
        raise AssertionError("the folder was read")

    monkeypatch.setattr(served_files, "files", no_reading)
    monkeypatch.setattr(os, "walk", no_reading)
    later = time.time() + served_files.MIN_AGE_S + 1
    removed = files.trim(now=later)
    assert [p.name for p in removed] == ["e" * 24 + ".png"]  # 4,000 bytes indexed: the oldest goes
    paths.append(files.write(bytes([3]) * 1000, ".png"))
    removed = files.trim(now=later + served_files.MIN_AGE_S + 1)
    assert [str(p) for p in removed] == [paths[1]]  # gone already: out of the index, and said (4,000 bytes again)
    paths.append(files.write(bytes([4]) * 1000, ".png"))
    assert [str(p) for p in files.trim(now=later + 2 * served_files.MIN_AGE_S + 2)] == [paths[2]]
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in (paths[0], paths[3], paths[4]))

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
