"""Inside the GAN without a server: MNIST's preprocessing against hand-computed cases, what D sees, inversion and
the spot-the-fake tally, checked as numbers. Models with a discriminator are found in weights/, so a model that
gets its D later is covered without changing this file."""

import io
import json
import multiprocessing
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from mnist_gan.data import SAMPLE_DATA, load_mnist
from mnist_gan.errors import InvalidInput, MnistGanError, WeightsError
from mnist_gan.images import latents, to_uint8
from mnist_gan.inside import spot
from mnist_gan.inside.critic import SoftGenerator, keep_code, one_hot
from mnist_gan.inside.inversion import Search, rms_error
from mnist_gan.inside.pictures import BadImage, read_image, to_mnist
from mnist_gan.model.generator import Generator, shipped_models
from mnist_gan.quality.coverage import coverage, half_pixel_error
from mnist_gan.service import AppSettings, Service
from testing.models import WITH_D, png_bomb, without_d
from testing.pictures import KINDS, decode_peak_mb
from testing.stats import held_out_accuracy, pixel_statistics
from testing.system import cli


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    service = Service(AppSettings(runs_dir=tmp_path_factory.mktemp("runs")))
    yield service
    service.close()


@pytest.fixture(scope="module")
def sample():
    return load_mnist(SAMPLE_DATA)


def png_bytes(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


# --- MNIST's preprocessing ------------------------------------------------------------------------------------

def test_preprocessing_matches_a_hand_computed_case():
    # black ink on white paper, 200 x 100: a solid 40-wide, 14-tall bar with its top-left corner at (30, 50)
    page = np.full((100, 200), 255, np.uint8)
    page[30:44, 50:90] = 0
    seen = to_mnist(read_image(png_bytes(page)))
    # by hand: inverted (the border is light), cropped to 14 x 40, fitted into 20 wide keeping the aspect: 7 x 20,
    # every pixel still full ink (area averaging of full ink). Placed at rows 10-16, columns 4-23 its centre of mass
    # is (13, 13.5): moved by (+1, +1) (halves round up) to rows 11-17, columns 5-24.
    expected = np.full((28, 28), -1.0, np.float32)
    expected[11:18, 5:25] = 1.0
    np.testing.assert_array_equal(seen[..., 0], expected)


def test_either_polarity_any_size_and_transparent_canvases_give_the_same_digit():
    page = np.zeros((300, 240), np.uint8)
    page[60:240, 100:130] = 255  # a white "1" on black
    page[60:90, 70:130] = 255
    white_on_black = to_mnist(read_image(png_bytes(page)))
    black_on_white = to_mnist(read_image(png_bytes(255 - page)))
    np.testing.assert_array_equal(white_on_black, black_on_white)
    rgba = np.zeros((300, 240, 4), np.uint8)  # black strokes on a transparent sketchpad layer
    rgba[..., 3] = page
    np.testing.assert_array_equal(to_mnist(read_image(png_bytes(rgba))), white_on_black)
    half = np.asarray(Image.fromarray(page).resize((120, 150), Image.Resampling.BOX))  # the same, half the size
    assert rms_error(to_mnist(read_image(half)), white_on_black)[0] < 0.05
    assert to_mnist(read_image(page)).shape == (28, 28, 1)


def test_mnist_digits_come_back_as_they_are(sample):
    # MNIST's own digits are already preprocessed: the median digit comes back pixel for pixel
    x = sample.x_test[:200]
    out = np.stack([to_mnist((image[..., 0] + 1) / 2) for image in x])
    errors = rms_error(out, x)
    assert np.median(errors) < 1e-6 and np.percentile(errors, 90) < 0.02


@pytest.mark.parametrize("data, message", [
    (png_bytes(np.full((300, 300), 255, np.uint8)), "empty"),
    (b"this is not an image", "not an image"),
    (b"", "empty"),
    (png_bytes(np.random.default_rng(0).integers(0, 256, (100, 100), np.uint8))[:3000], "could not be decoded"),
])
def test_bad_pictures_get_a_plain_message(data, message):
    with pytest.raises(BadImage, match=message):
        to_mnist(read_image(data))


@pytest.mark.parametrize("kind", KINDS)
def test_a_picture_at_the_size_limit_decodes_in_bounded_memory(kind):
    """The worst formats at 4096 x 4096 (a 35 kB lossless WEBP of transparent pixels once took 806 MB: its float
    copies); what is decoded is a digit like any other."""
    measured = decode_peak_mb(kind)
    assert measured["peak_mb"] < 200 and 0.01 < measured["ink"] < 0.1, measured


def test_huge_and_animated_images_are_refused_before_decoding():
    bomb = png_bomb(20_000, 20_000)  # 50 MB once decoded, 48 kB here
    assert len(bomb) < 200_000
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(BadImage, match="over 178 million pixels; at most 4096 x 4096"):  # PIL's own guard
        read_image(bomb)
    with pytest.raises(BadImage, match="is 6000 x 5000 pixels; at most 4096 x 4096"):  # below PIL's, above ours
        read_image(png_bomb(6_000, 5_000))
    assert time.perf_counter() - started < 1.0
    assert tracemalloc.get_traced_memory()[1] < 8 * 2**20
    tracemalloc.stop()
    frames = [Image.fromarray(np.full((50, 50), v, np.uint8)) for v in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(BadImage, match="animated"):
        read_image(buffer.getvalue())


def test_a_large_jpeg_photo_is_read_at_reduced_scale():
    page = np.full((3000, 4000), 235, np.uint8)
    page[600:2400, 1800:2100] = 30  # a dark "1" on light paper
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format="JPEG", quality=85)
    started = time.perf_counter()
    gray = read_image(buffer.getvalue())
    assert time.perf_counter() - started < 1.0 and max(gray.shape) <= 1000  # JPEG's draft mode: 1/4 scale
    seen = to_mnist(gray)
    assert seen.shape == (28, 28, 1) and (seen[..., 0] > 0).sum(axis=0).max() == 20  # the bar is 20 tall


# --- what D sees ----------------------------------------------------------------------------------------------

def auc(high: np.ndarray, low: np.ndarray) -> float:
    return float(np.mean(high[:, None] > low[None, :]) + 0.5 * np.mean(high[:, None] == low[None, :]))


@pytest.mark.parametrize("model", WITH_D)
def test_d_scores_held_out_digits_above_noise_and_its_heatmap_fits_the_image(service, sample, model):
    critic = service.inside.critic(model)
    labels = sample.y_test if critic.conditional else None
    real = critic.scores(sample.x_test, labels)
    noise = critic.scores(np.random.default_rng(0).uniform(-1, 1, sample.x_test.shape), labels)
    assert auc(real, noise) > 0.95
    report = service.inside.discriminate(model, service.inside.digit(model, "test", index=5))
    logit, gradient = critic.saliency(sample.x_test[5], int(sample.y_test[5]) if critic.conditional else None)
    assert gradient.shape == (28, 28) and np.abs(gradient).max() > 0
    assert report.images["heatmap"].shape[:2] == (28 * 10 + 58, 28 * 10)  # 10x the image, then its legend
    assert report.report["says_real"] == (report.report["score"] > report.report["threshold"])
    # the gradient is the logit's: a finite difference along it agrees
    step = 1e-2 * gradient / np.linalg.norm(gradient)
    moved, _ = critic.saliency(sample.x_test[5] + step[..., None], int(sample.y_test[5]) if critic.conditional
                               else None)
    assert moved - logit == pytest.approx(float(np.sum(gradient * step)), rel=0.2)


def test_a_look_marks_its_score_on_the_models_histogram_drawn_once(service):
    """The histograms of D's scores are the model's, drawn once (their words were a third of a Look's drawing);
    each Look marks its own score on a copy: a black line at the score, an arrow and the value above the bars."""
    model = WITH_D[0]
    critic = service.inside.critic(model)
    frame = service.inside._histogram(model, critic)
    drawn = frame.pixels.copy()
    for index in (1, 2, 3):
        look = service.inside.discriminate(model, service.inside.digit(model, "test", index=index))
        picture, x = look.images["histogram"], round(frame.x_of(look.report["score"]))
        bottom = picture.shape[0] - 54
        changed = np.argwhere((picture != frame.pixels).any(axis=-1))
        assert len(changed) and (changed[:, 0] <= bottom).all()  # nothing below the bars: the range, the legend
        beside = changed[(changed[:, 0] >= frame.top - 8) & (np.abs(changed[:, 1] - x) > 2)]
        assert not len(beside), beside[:5]  # beside the line, only the arrow and the value above the bars changed
        assert (picture[frame.top:bottom, x - 1:x + 2] == 0).all(axis=-1).any(axis=1).all()  # the line, all along
    assert service.inside._histogram(model, critic) is frame and (frame.pixels == drawn).all()


@pytest.mark.parametrize("model", WITH_D)
def test_gradient_ascent_on_pixels_raises_d_score(service, model):
    rises = []
    for index in range(10):
        pulled = service.inside.d_pull(model, service.inside.digit(model, "test", index=index), steps=8)
        scores = pulled.report["scores"]
        rises.append(scores[-1] - scores[0])
        assert pulled.images["frames"].shape == (9, 28, 28)
    assert min(rises) > 0


@pytest.mark.parametrize("model", WITH_D)
def test_following_d_in_z_raises_d_score(service, model):
    scores = [service.inside.z_pull(model, seed=seed, steps=8).report["scores"] for seed in range(6)]
    assert np.mean([s[-1] - s[0] for s in scores]) > 0


def test_models_without_their_discriminator_say_so_plainly(service, tmp_path):
    model = without_d(service.library, tmp_path)
    with pytest.raises(WeightsError, match=f"{model} was saved without its discriminator.*Models that have theirs"):
        service.inside.discriminate(model, service.inside.digit(model, "test", index=0))


# --- finding digits in latent space ---------------------------------------------------------------------------

@pytest.mark.parametrize("model", list(shipped_models()))
def test_inverting_a_models_own_samples_recovers_their_pixels(service, model):
    inverter = service.inside.inverter(model)
    generator = inverter.generator
    labels = np.arange(8) % 10 if generator.config.conditional else None
    own = generator.images(latents(2024, 8, generator.config.latent_dim), labels)
    found = inverter.invert(own, labels)
    assert found.errors.max() < 0.03  # RMS on 0-1 pixels; real digits' median is 0.07-0.10 (bench/README.md)
    np.testing.assert_allclose(found.images, generator.images(found.z, found.labels if labels is not None else None),
                               atol=1e-5)  # the z found draws the reconstruction, as the explorer will draw it


@pytest.mark.slow
@pytest.mark.parametrize("model", list(shipped_models()))
def test_held_out_digits_are_reconstructed_as_the_right_digit(service, sample, model):
    # bench/README.md, Coverage: 97.4-99.5% of 1,000 held-out digits read as the true digit; here 40 of them, at least 90%
    found = service.inside.inverter(model).invert(sample.x_test[:40])
    reads = service.inside.classifier().predict(found.images)[0].argmax(axis=1)
    assert np.mean(reads == sample.y_test[:40]) >= 0.9


def test_an_inversion_report_and_the_explorer_continuing_from_it(service):
    found = service.inside.invert("mlp-cond", service.inside.digit("mlp-cond", "test", index=3))
    report = found.report
    assert len(report["z"]) == 100 and report["digit"] == 4 and report["error"] < 0.15
    assert report["nearest_training"]["index"] >= 0 and report["d_score"] is not None
    assert found.images["path"].shape == (Search().frames, 28, 28)
    drawn = service.drawing.latent("mlp-cond", 0, str(report["digit"]), "raw", [], z=report["z"])
    np.testing.assert_array_equal(drawn, found.images["reconstruction"])  # the same G(z), 10x
    moved = service.drawing.latent("mlp-cond", 0, "4", "raw", [1.0], z=report["z"])
    assert not np.array_equal(moved, drawn)
    with pytest.raises(InvalidInput, match="z must be a list of 100 numbers"):
        service.drawing.latent("mlp-cond", 0, "4", "raw", [], z=[0.0] * 3)


def test_soft_labels_reach_the_models_own_layers_and_codes_stay_put():
    from mnist_gan.model.generator import Generator

    generator = Generator.load(shipped_models()["mlp-cond"])
    z, labels = latents(1, 10, 100), np.arange(10)
    np.testing.assert_allclose(SoftGenerator(generator).images(z, one_hot(labels)), generator.images(z, labels),
                               atol=1e-5)
    moved = keep_code(np.random.default_rng(0).normal(size=(50, 100)), np.arange(50) % 10, 10)
    assert np.array_equal(moved[:, :10].argmax(axis=1), np.arange(50) % 10)


def test_style_grid_and_class_morph(service):
    grid = service.inside.style_grid("mlp-cond", seed=3)
    strip, frames = service.inside.morph("mlp-cond", 3, 8, seed=3, frames=6)
    generator = service.library.get("mlp-cond")
    z = latents(3, 1, 100).repeat(2, axis=0)
    np.testing.assert_array_equal(frames[[0, -1]], to_uint8(generator.images(z, [3, 8])))  # the ends: plain labels
    assert grid.shape == (3 * 32, 3 * (10 * 30 + 2)) and strip.shape == (3 * 32, 3 * (6 * 30 + 2))
    with pytest.raises(InvalidInput, match="unconditional"):
        service.inside.style_grid("classic", 3)


def test_coverage_rows_and_the_half_pixel_bar(service, sample):
    line = np.full((1, 28, 28), -1.0)
    line[0, :, 10] = 1.0  # a one-pixel vertical line: half a pixel right halves it over two columns
    # right: two columns of 0.5 differences; down: only the top pixel differs (by 0.5)
    assert half_pixel_error(line)[0] == pytest.approx((np.sqrt(56 * 0.25 / 784) + np.sqrt(0.25 / 784)) / 2)
    result = coverage(service.inside.inverter("mlp-cond"), sample.x_test[:20], sample.y_test[:20], sample.x_train,
                      service.inside.classifier(), Search(restarts=2))
    overall = result["rows"][-1]
    assert overall["digit"] == "all" and overall["n"] == 20 and 0 <= overall["well"] <= 1
    assert overall["read_as_true"] >= 0.9 and len(result["reconstructions"]) == 20


@pytest.mark.parametrize("call, message", [
    (lambda s: s.inside.invert("classic", None), "no image"),
    (lambda s: s.inside.invert("classic", np.zeros((10, 10), np.uint8), restarts=17), "restarts must be a whole number"),
    (lambda s: s.inside.d_pull("classic", np.zeros((9, 9), np.uint8)), "empty"),
    (lambda s: s.inside.digit("classic", "test", index=1000), "test digit index must be a whole number from 0"),
    (lambda s: s.inside.digit("classic", "webcam"), "source must be"),
    (lambda s: s.inside.discriminate("mlp-cond", np.eye(20, dtype=np.uint8) * 255, digit="12"), "digit must be one of"),
    (lambda s: s.inside.morph("mlp-cond", 3, 8, frames=99), "frames must be a whole number from 2 to 16"),
    (lambda s: s.inside.spot_answer("no-such-round", []), "expired or was answered"),
])
def test_bad_values_are_refused_plainly(service, call, message):
    with pytest.raises(MnistGanError, match=message):
        call(service)


# --- spot the fake ----------------------------------------------------------------------------------------------

def test_wilson_interval_and_judging_match_hand_computed_values():
    low, high = spot.wilson(5, 10)  # p = 0.5, n = 10: 0.5 -+ 1.96 sqrt(0.25/10 + 1.96^2/400) / (1 + 1.96^2/10)
    assert (low, high) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert spot.wilson(0, 0) is None and spot.wilson(0, 20)[0] == 0.0
    fake = np.array([True] * 8 + [False] * 8)
    marked = np.array([True, True, False, False, False, False, False, False, True] + [False] * 7)
    assert spot.judge(fake, marked) == {"fakes": 8, "fooled": 6, "reals": 8, "false_alarms": 1}
    assert spot.marked_positions(["1", 16]).nonzero()[0].tolist() == [0, 15]
    for marks in ([0], [17], ["²"], ["٣"], [True], [1.0], "1", list(range(1, 18))):  # "²".isdigit(), int("٣") == 3
        with pytest.raises(InvalidInput, match="marked must be a list of image numbers 1-16"):
            spot.marked_positions(marks)


def test_a_round_keeps_its_answer_and_is_answered_once(service):
    round_id, images = service.inside.spot_round("classic")
    assert images.shape == (16, 28, 28) and images.dtype == np.uint8 and len(round_id) >= 20
    answer = service.inside.spot_answer(round_id, [1, 2, 3])
    assert len(answer["fake"]) == 8 and answer["right"] == 16 - len(set(answer["fake"]) ^ {1, 2, 3})
    assert answer["fooled"] == 8 - len(set(answer["fake"]) & {1, 2, 3})
    with pytest.raises(spot.RoundGone):
        service.inside.spot_answer(round_id, [])
    clock = [0.0]
    rounds = spot.Rounds(max_rounds=3, max_age_s=10, clock=lambda: clock[0])
    ids = [rounds.add("classic", spot.layout(np.random.default_rng(i))) for i in range(4)]
    assert len(rounds) == 3
    with pytest.raises(spot.RoundGone):
        rounds.take(ids[0])  # the oldest made way
    clock[0] = 11.0
    with pytest.raises(spot.RoundGone):
        rounds.take(ids[3])  # too old


def test_a_visitors_rounds_push_out_only_their_own_and_count_only_as_a_person_could():
    clock = [0.0]
    rounds = spot.Rounds(max_rounds=100, clock=lambda: clock[0], per_page=4, per_address=10, counted_per_hour=2)
    kept = rounds.add("classic", spot.layout(np.random.default_rng(0)), "203.0.113.5", "bob")
    for i in range(2_000):  # a script's loop of new rounds, each in a page of its own
        rounds.add("classic", spot.layout(np.random.default_rng(i)), "203.0.113.66", f"page-{i}")
    assert len(rounds) == 11 and rounds.take(kept).visitor == "203.0.113.5"  # the address's last 10, and bob's
    # a class behind one NAT: each page keeps its own last 4, whatever its classmates deal
    class_rounds = {page: [rounds.add("classic", spot.layout(np.random.default_rng(i)), "198.51.100.1", page)
                           for i in range(5)] for page in ("ann", "ben")}
    with pytest.raises(spot.RoundGone):
        rounds.take(class_rounds["ann"][0])  # ann's fifth pushed out her own first
    assert [rounds.take(r).page for r in class_rounds["ann"][1:] + class_rounds["ben"][1:]] == \
        ["ann"] * 4 + ["ben"] * 4
    dealt = [rounds.add("classic", spot.layout(np.random.default_rng(i)), "v", "p") for i in range(4)]
    assert rounds.count(rounds.take(dealt[0])).startswith("answered within")  # at once: a script's answer
    clock[0] += spot.MIN_ANSWER_S
    assert [rounds.count(rounds.take(d)) for d in dealt[1:3]] == [None, None]
    assert "more than 2 rounds from your address in an hour" in rounds.count(rounds.take(dealt[3]))
    clock[0] += 3_601  # an hour on: counted again
    assert rounds.count(rounds.take(rounds.add("classic", spot.layout(np.random.default_rng(9)), "v"))) is not None
    late = rounds.add("classic", spot.layout(np.random.default_rng(9)), "v")
    clock[0] += spot.MIN_ANSWER_S
    assert rounds.count(rounds.take(late)) is None


def test_served_digits_say_nothing_but_their_shapes(sample):
    """Real test digits and a model's samples are drawn again from their shapes: digits of one shape give the same
    bytes, and a classifier on pixel statistics (what a script once read every answer from) does no better than
    chance on the default model's rounds, where it read the raw pixels near perfectly."""
    rng = np.random.default_rng(0)
    real = to_uint8(sample.x_test[:1])
    dimmed = np.where(real >= 128, 200, np.where(real > 0, 60, 0)).astype(np.uint8)  # other greys, same shape
    speckled = np.where(real == 0, rng.integers(0, 3, real.shape), real).astype(np.uint8)
    served = [spot.render(image, np.random.default_rng(1)) for image in (real, dimmed, speckled)]
    assert all(np.array_equal(served[0], s) for s in served[1:])
    reals = to_uint8(sample.x_test[:600])
    fakes = Generator.load(shipped_models()["mlp-uncond"]).generate(1, 600)
    labels = np.r_[np.zeros(600), np.ones(600)]
    raw = held_out_accuracy(pixel_statistics(np.concatenate([reals, fakes])), labels)
    rendered = held_out_accuracy(pixel_statistics(spot.render(np.concatenate([reals, fakes]), rng)), labels)
    assert raw > 0.9 and abs(rendered - 0.5) < 3 * np.sqrt(0.25 / 600), (raw, rendered)


def _append(path: str, model: str, times: int) -> None:
    tally = spot.FooledTally(path, max_bytes=2_000)
    for _ in range(times):
        tally.add(model, {"fakes": 8, "fooled": 3, "reals": 8, "false_alarms": 1})


@pytest.mark.slow
def test_the_tally_is_exact_across_processes_restarts_and_compaction(tmp_path):
    path = str(tmp_path / "spot.jsonl")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append, args=(path, model, 40)) for model in ("a", "b", "a")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    again = spot.FooledTally(path)  # a new object reading the file: as after a restart
    assert again.totals() == {"a": {"fakes": 640, "fooled": 240, "reals": 640, "false_alarms": 80},
                              "b": {"fakes": 320, "fooled": 120, "reals": 320, "false_alarms": 40}}
    assert (tmp_path / "spot.jsonl").stat().st_size <= 2_000 + 200  # compacted as it grew
    record = again.record("a")
    assert record["judgements"] == 640 and record["fooled_rate"] == pytest.approx(0.375)
    assert record["interval_95"] == pytest.approx(list(spot.wilson(240, 640)))
    with open(path, "a") as f:
        f.write('{"model": "a", "fakes": 8, "foo')  # a torn last line (killed mid-write) is skipped
    assert spot.FooledTally(path).totals()["a"]["fakes"] == 640
    assert json.loads((tmp_path / "spot.jsonl").read_text().splitlines()[0])["model"] in ("a", "b")


@pytest.mark.slow
def test_the_coverage_command_prints_its_table_and_the_worst_digits(tmp_path):
    done = cli("coverage", "--weights", "classic", "--n", "12", "--restarts", "1", "--out", tmp_path / "worst.png")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "coverage of the first 12 test digits of the bundled sample" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| all | 12 |")]
    assert len(rows) == 1 and "%" in rows[0]
    with Image.open(tmp_path / "worst.png") as grid:
        assert grid.size[0] == 3 * (8 * 30 + 2)  # 8 pairs a row, 3x
    done = cli("evaluate", "--weights", "classic", "--n", "200", "--coverage", "12", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["inversion_coverage"]["rows"][-1]["n"] == 12
