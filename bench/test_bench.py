"""The benchmarks' own helpers, and the fast paths they led to, checked against independent computations (run
with the suite: pytest collects bench/ too; tests/ never imports bench)."""

import io
import os
import subprocess
import sys
import time
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from bench.appserver import App
from mnist_gan.atomic_files import atomic_write
from mnist_gan.images import encode_png, make_grid, upscale
from mnist_gan.model.generator import Generator, shipped_models
from testing.app import GENERATE, AppError
from testing.system import cpu_seconds, descendants, percentile, rss_mb, summary


@pytest.mark.parametrize("shape, scale", [((5, 7), 3), ((4, 6, 9), 2), ((3, 3), 1)])
def test_upscale_is_nearest_neighbour_like_kron(shape, scale):
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    ones = np.ones((1,) * (len(shape) - 2) + (scale, scale), np.uint8)
    np.testing.assert_array_equal(upscale(images, scale), np.kron(images, ones))


def test_fast_png_holds_the_same_pixels():
    grid = make_grid(np.random.default_rng(1).integers(0, 256, (64, 28, 28), dtype=np.uint8), scale=2)
    fast, default = encode_png(grid, compress_level=1), encode_png(grid)
    for data in (fast, default):
        np.testing.assert_array_equal(np.asarray(Image.open(BytesIO(data))), grid)
    assert fast != default  # a different zlib level really was used


def test_atomic_write_without_fsync_still_replaces_the_file(tmp_path):
    path = tmp_path / "a.png"
    atomic_write(path, b"old", sync=False)
    atomic_write(path, b"new", sync=False)
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_summary_and_percentile_agree_with_numpy():
    seconds = [i / 1000 for i in range(100, 0, -1)]  # 1..100 ms, in no particular order
    for q in (0.0, 0.5, 0.9, 0.99, 1.0):
        assert percentile(seconds, q) == pytest.approx(np.percentile(seconds, 100 * q))
    assert percentile([0.5], 0.9) == 0.5
    assert summary(seconds) == {"median ms": 50.5, "p90 ms": 90.1, "calls": 100}


def test_process_accounting_sees_a_child_burn_cpu_and_memory():
    child = subprocess.Popen([sys.executable, "-c", "x = bytearray(200 * 2**20)\nwhile True: pass"])
    try:
        deadline = time.monotonic() + 10
        while rss_mb(child.pid)[1] < 200:
            assert time.monotonic() < deadline, "the child never reached 200 MB"
            time.sleep(0.05)
        assert child.pid in descendants(os.getpid())
        before = cpu_seconds([child.pid])[child.pid]
        time.sleep(0.5)
        assert cpu_seconds([child.pid])[child.pid] > before
        current, peak = rss_mb(child.pid)
        assert 200 <= current <= peak
    finally:
        child.kill()
        child.wait()
    assert rss_mb(child.pid) == (0.0, 0.0) and cpu_seconds([child.pid]) == {}


@pytest.mark.slow
def test_app_process_answers_the_raw_rest_path_with_the_models_pixels():
    """The benchmarks' client: `python app.py` started, called with and without a session, stopped with its group."""
    expected = make_grid(Generator.load(shipped_models()["classic"]).generate(0, 64), scale=2)
    with App() as app:
        assert 0 < app.wait_ready() < 120
        for session in (None, "test-session"):
            url = app.call("generate", *GENERATE, session=session)[0]["url"]
            png = app.http.get(url)  # the PNG as a browser fetches it
            np.testing.assert_array_equal(np.asarray(Image.open(BytesIO(png.content))), expected)
        with pytest.raises(AppError, match="unknown model"):
            app.call("generate", "nope", *GENERATE[1:])
        pid = app.process.pid
    assert app.process.returncode is not None and rss_mb(pid) == (0.0, 0.0)


def test_time_to_quality_chart_is_a_png_of_the_curves():
    from PIL import Image

    from bench.quality import draw

    curves = {"classic, plain loop": [{"wall_s": 30.0, "cfid": 40.0}, {"wall_s": 60.0, "cfid": 20.0}],
              "default config": [{"wall_s": 30.0, "cfid": 5.0}, {"wall_s": 60.0, "cfid": 1.5}]}
    png = draw(curves, target=4.0, deadline_s=200.0)
    image = Image.open(io.BytesIO(png))
    assert image.size == (900, 520)
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    for colour in ((31, 119, 180), (214, 39, 40)):  # both curves were drawn
        assert np.any(np.all(pixels == colour, axis=1))


def test_select_prefers_the_sampler_that_meets_the_targets():
    from bench.select import penalty, rank

    good = {"cfid_x_real": 3.0, "nn_ratio": 0.98, "near_copies": 0.01, "recognisable_min": 0.975,
            "class_min": 0.095, "class_max": 0.105}
    rows = {"copies": {**good, "cfid_x_real": 2.0, "nn_ratio": 0.91},  # the best cFID, but it copies
            "unreadable": {**good, "cfid_x_real": 2.5, "recognisable_min": 0.96},  # copies less, reads worse
            "good": good}
    assert penalty(good) == 0 and penalty(rows["copies"]) == pytest.approx(2.0)
    assert penalty(rows["unreadable"]) == pytest.approx(1 / 3)
    assert rank(rows) == ["good", "unreadable", "copies"]
    rows["good"] = {**good, "class_max": 0.125}  # a digit drawn 12.5% of the time: 1.5 points over
    assert penalty(rows["good"]) == pytest.approx(1.5) and rank(rows)[0] == "unreadable"

