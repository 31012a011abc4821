"""The benchmarks' own helpers, and the fast paths they led to, checked against independent computations (run
with the suite: pytest collects bench/ too; tests/ never imports bench)."""

import io
import os
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.appserver import App
from mnist_gan.atomic_files import atomic_write
from mnist_gan.images import encode_png, make_grid, upscale
from mnist_gan.model.generator import Generator, shipped_models
from testing.app import GENERATE, AppError, AppProcess
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



def test_the_gil_benchmark_times_each_way_alone_and_beside_a_busy_thread_it_then_stops():
    import threading

    from bench import gil

    rows = gil.measure(rounds=1, repeats=2, folder_files=20)
    ways = ["a 3 kB result file read whole", "a round's 16 PNGs made", "an event's 21 outputs made by gradio",
            "a gr.update's component made by gradio"]
    assert [(row["what"].split(" (")[0], row["beside"]) for row in rows] == [
        *[(way, "nothing") for way in ways], *[(way, "one busy thread") for way in ways],
        ("the cache cap's pass over 20 result files", "nothing")]
    assert [len(row["median ms"].split(" / ")) for row in rows] == [1, 3, 2, 2, 1, 3, 2, 2, 2]
    assert all(float(ms) > 0 for row in rows for ms in row["median ms"].split(" / "))
    deadline = time.monotonic() + 10
    while any(t.name == gil.BUSY for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == gil.BUSY for t in threading.enumerate())  # the busy thread ended with the measurement

@pytest.mark.slow
def test_the_server_loop_benchmark_runs_the_servers_it_names(tmp_path):
    """bench.server_loop's two apps: uvicorn on uvloop + httptools (what requirements.txt installs), and on its
    fallback with the two made unimportable (their compiled modules loaded in the app's process, or not)."""
    from bench.server_loop import ways

    for way, env in ways(str(tmp_path)).items():
        with AppProcess(env=env) as app:
            app.call("generate", *GENERATE)  # an event served, and the HTTP parser has parsed requests
            maps = Path(f"/proc/{app.process.pid}/maps").read_text()
            loaded = {name for name in ("uvloop", "httptools") if f"/{name}/" in maps}
        assert loaded == ({"uvloop", "httptools"} if way == "uvloop + httptools" else set()), way


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


def test_issue_25s_selection_weighs_recall_and_memorisation():
    from bench.select import penalty25, rank, shortfalls25

    met = {"recall_min": 0.82, "precision_min": 0.86, "coverage_min": 0.94, "cfid_x_real_max": 1.4,
           "cfid_x_real": 1.3, "recognisable_min": 0.975, "class_min": 0.095, "class_max": 0.105, "nn_ratio": 0.96,
           "near_copies": 0.012}
    # today's mlp-uncond, roughly: clean and sharp, too few kinds of digit, a little too close to the training set
    shipped = {**met, "recall_min": 0.675, "precision_min": 0.903, "coverage_min": 0.909, "cfid_x_real_max": 2.46,
               "cfid_x_real": 2.36, "nn_ratio": 0.92, "near_copies": 0.024}
    assert penalty25(met) == 0 and shortfalls25(met) == {}
    assert shortfalls25(shipped) == pytest.approx({"recall_min": 2.5, "coverage_min": 1.05,
                                                   "cfid_x_real_max": 0.64, "nn_ratio": 1.0, "near_copies": 1.8})
    # a sampler with more variety and less copying but blurrier digits ranks above the shipped one
    spread = {**shipped, "recall_min": 0.75, "precision_min": 0.84, "cfid_x_real_max": 2.9, "nn_ratio": 0.96,
              "near_copies": 0.014}
    assert penalty25(spread) == pytest.approx(1.0 + 0.2 + 1.05 + 0.9333333)
    assert rank({"shipped": shipped, "spread": spread, "met": met}, "25") == ["met", "spread", "shipped"]


def test_compare_puts_runs_side_by_side_at_equal_steps(tmp_path):
    """bench.compare reads a run folder's checkpoint header and a running train's log lines alike."""
    from bench.compare import table
    from mnist_gan.config import GANConfig
    from mnist_gan.run_folder import CHECKPOINT_FILE
    from mnist_gan.training.checkpoint import RunMeta, save_checkpoint

    run = tmp_path / "wide"
    run.mkdir()
    quality = [{"step": 2000, "cfid": 4.0, "recall": 0.6, "precision": 0.8},
               {"step": 4000, "cfid": 2.5, "recall": 0.65, "precision": 0.85}]
    history = [{"step": 2000, "images_per_sec": 900.0}, {"step": 4000, "images_per_sec": 1100.0}]
    save_checkpoint(run / CHECKPOINT_FILE, {"w": np.zeros(1)}, RunMeta(GANConfig(), 4000, history=history,
                                                                     quality=quality))
    log = tmp_path / "narrow.log"
    log.write_text("training on CPU\nstep 2000: cfid=3.5, recall=0.7, precision=0.81\nstep 6000: cfid=1.9, "
                   "recall=0.72, precision=0.84\n")
    lines = table([run, log, tmp_path / "queued"], None, ["cfid", "recall"]).splitlines()
    assert lines[0] == "| run | @ 2,000 | best cFID (step) | steps | images/s |"  # the steps both reached
    assert lines[3] == "| wide | 4 / 0.600 | 2.5 (4,000) | 4,000 | 1000 |"
    assert lines[4] == "| narrow | 3.5 / 0.700 | 1.9 (6,000) | 6,000 | - |"
    assert len(lines) == 5  # the run not started yet has no row
    every = table([run, log], [2000, 4000, 6000], ["cfid"]).splitlines()
    assert every[3].startswith("| wide | 4 | 2.5 | - |") and every[4].startswith("| narrow | 3.5 | - | 1.9 |")
