"""Inside the GAN through gradio_client and the raw REST path: the image endpoints take files of any size, answer
bad files plainly, and give the same numbers as the package."""

import json
import re
import time

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from mnist_gan.images import to_uint8
from mnist_gan.inside import spot
from mnist_gan.model.generator import Generator, shipped_models
from testing.app import rest_call
from testing.models import WITH_D, png_bomb, without_d

INSIDE = {"discriminate", "invert", "d_pull", "z_pull", "style_grid", "morph", "spot_round", "spot_answer"}


@pytest.fixture(scope="module")
def client(app_server, tmp_path_factory):
    _, url = app_server
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("dl")))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Pictures a visitor might send: a drawn 1 (black on white, 600 x 400 PNG), a 2,000 x 1,500 JPEG photo of
    a white 7 on dark paper, and bad ones."""
    folder = tmp_path_factory.mktemp("pictures")
    one = np.full((400, 600), 255, np.uint8)
    one[50:350, 280:330] = 0
    Image.fromarray(one).save(folder / "one.png")
    seven = np.full((1500, 2000), 40, np.uint8)
    seven[300:380, 700:1300] = 230
    for row in range(380, 1200):
        seven[row, 1300 - (row - 380) // 2 - 40: 1300 - (row - 380) // 2 + 40] = 230
    Image.fromarray(seven).save(folder / "seven.jpg", quality=80)
    Image.fromarray(np.full((300, 300), 255, np.uint8)).save(folder / "empty.png")
    (folder / "text.png").write_bytes(b"not an image at all")
    (folder / "bomb.png").write_bytes(png_bomb(20_000, 20_000))
    frames = [Image.fromarray(np.full((60, 60), v, np.uint8)) for v in (0, 255)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    return folder


def png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def test_the_inside_endpoints_are_public_and_named_and_take_image_files(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert INSIDE <= {name.lstrip("/") for name in named}
    for endpoint in ("/discriminate", "/invert", "/d_pull"):
        image = named[endpoint]["parameters"][1]
        assert image["parameter_name"] == "image" and image["python_type"]["type"] == "filepath"


@pytest.mark.parametrize("model", WITH_D)
def test_discriminate_scores_a_drawn_digit_and_shows_its_heatmap(client, app_server, files, model):
    report, heatmap, seen, histogram = client.predict(model=model, image=handle_file(str(files / "one.png")),
                                                      api_name="/discriminate")
    app, _ = app_server
    expected = app.service.inside.discriminate(model, str(files / "one.png"))  # the package's own numbers
    assert report["score"] == pytest.approx(expected.report["score"], abs=1e-6)
    assert report["says_real"] == (report["score"] > report["threshold"])
    assert png(heatmap).shape == (338, 280, 3) and png(seen).shape == (280, 280)
    assert png(histogram).shape[1] == 360
    if app.service.library.info(model)["conditional"]:
        assert report["digit"] == 1 and "classifier" in report["digit_from"]


def test_a_model_without_its_discriminator_says_so(client, app_server, files, tmp_path):
    model = without_d(app_server[0].service.library, tmp_path)
    with pytest.raises(AppError, match="saved without its discriminator"):
        client.predict(model=model, image=handle_file(str(files / "one.png")), api_name="/discriminate")


def test_invert_finds_a_photographed_digit_and_the_explorer_draws_the_same_z(client, app_server, files):
    report, reconstruction, path, nearest = client.predict(model="mlp-cond", image=handle_file(str(files /
                                                                                                  "seven.jpg")),
                                                           api_name="/invert")
    assert report["digit"] == 7 and report["classifier_reads"] == 7 and len(report["z"]) == 100
    assert report["error"] < 0.2 and report["restarts"] == 4
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames > 2
    assert png(nearest).shape == (280, 280)
    generator = Generator.load(shipped_models()["mlp-cond"])
    drawn = to_uint8(generator.images(np.float32([report["z"]]), [7]))[0]
    np.testing.assert_array_equal(png(reconstruction)[::10, ::10], drawn)  # G(z) as the app draws it
    app, _ = app_server
    explored = app.service.drawing.latent("mlp-cond", 0, "7", "raw", [], z=report["z"])  # "open in Latent explorer"
    np.testing.assert_array_equal(explored, png(reconstruction))


def test_pulls_style_grid_and_morph(client, files):
    report, strip, gif = client.predict(model="classic", image=handle_file(str(files / "one.png")), steps=6,
                                        api_name="/d_pull")
    assert len(report["scores"]) == 7 and report["scores"][-1] > report["scores"][0]
    assert png(strip).shape == (3 * 32, 3 * (7 * 30 + 2))
    report, strip = client.predict(model="mlp-cond", seed=5, digit="2", steps=4, api_name="/z_pull")
    assert len(report["scores"]) == 5
    grid = png(client.predict(model="mlp-cond", seed=5, api_name="/style_grid"))
    assert grid.shape == (3 * 32, 3 * (10 * 30 + 2))
    strip, gif = client.predict(model="mlp-cond", digit_a="1", digit_b="7", seed=5, frames=5, api_name="/morph")
    assert png(strip).shape == (3 * 32, 3 * (5 * 30 + 2))
    with pytest.raises(AppError, match="unconditional"):
        client.predict(model="classic", seed=5, api_name="/style_grid")


@pytest.mark.parametrize("name, message", [
    ("empty.png", "the image is empty"),
    ("text.png", "not an image this app reads"),
    ("bomb.png", "over 178 million pixels; at most 4096 x 4096"),
    ("animated.gif", "animated images are not read"),
])
def test_bad_files_get_a_plain_message_quickly(client, files, name, message):
    for endpoint in ("/discriminate", "/invert"):
        started = time.perf_counter()
        with pytest.raises(AppError, match=re.escape(message)) as error:
            client.predict(model="classic", image=handle_file(str(files / name)), api_name=endpoint)
        assert time.perf_counter() - started < 10
        assert "/tmp" not in str(error.value) and "Traceback" not in str(error.value)


@pytest.mark.parametrize("image", [
    "/etc/passwd",
    {"path": "/etc/passwd"},
    {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
    {"path": "../../../etc/passwd", "meta": {"_type": "gradio.FileData"}},
])
def test_an_image_parameter_never_reads_a_server_file(app_server, image):
    _, url = app_server
    with httpx.Client(timeout=60) as http:
        kind, value = rest_call(http, url, "discriminate", ["classic", image, "auto"], session="inside-test")
    assert kind == "error" and "root:" not in json.dumps(value)


def test_spot_the_fake_through_the_api(client, app_server):
    app, _ = app_server
    before = app.service.inside.spot_record("mlp-cond")["judgements"]
    round_id, gallery = client.predict(model="mlp-cond", api_name="/spot_round")
    assert len(gallery) == 16 and [item["caption"] for item in gallery] == [str(i) for i in range(1, 17)]
    time.sleep(spot.MIN_ANSWER_S)  # as long as a person needs to look: an answer sooner is not counted
    answer = client.predict(round_id=round_id, marked=[1, 5, 9], api_name="/spot_answer")
    assert len(answer["fake"]) == 8 and answer["fooled"] == 8 - len(set(answer["fake"]) & {1, 5, 9})
    assert answer["counted"] and answer["record"]["judgements"] == before + 8
    assert answer["record"]["interval"] == "Wilson score, 95%"
    assert answer["record"]["cfid"] == pytest.approx(Generator.load(shipped_models()["mlp-cond"]).metrics["cfid"])
    with pytest.raises(AppError, match="expired or was answered already"):
        client.predict(round_id=round_id, marked=[], api_name="/spot_answer")
    with pytest.raises(AppError, match="marked must be a list of image numbers 1-16"):
        round_id, _ = client.predict(model="mlp-cond", api_name="/spot_round")
        client.predict(round_id=round_id, marked=[17], api_name="/spot_answer")


def test_a_round_says_nothing_about_its_answer(app_server):
    _, url = app_server
    with httpx.Client(timeout=60) as http:
        kind, value = rest_call(http, url, "spot_round", ["classic"], session="inside-test")
    assert kind == "complete"
    text = json.dumps(value)
    assert not re.search(r"fake|real", text, re.IGNORECASE)  # an id and 16 numbered images, nothing else
    names = [item["image"]["path"].rsplit("/", 1)[-1] for item in value[1]]
    assert all(re.fullmatch(r"[0-9a-f]{24}\.png", name) for name in names)
    with httpx.Client(timeout=60) as http:
        again = [item["image"]["path"].rsplit("/", 1)[-1] for item in
                 rest_call(http, url, "spot_round", ["classic"], session="inside-test")[1][1]]
    assert not set(names) & set(again)  # random names: a real digit dealt twice is not recognised by its URL


def test_a_script_cannot_skew_a_models_fooled_rate(app_server, client, monkeypatch):
    """Looping rounds and blank answers (which once moved classic's rate from 14% to 95%): answers faster than a
    person can look count for nothing, and one address adds at most so many rounds an hour. The rounds' clock is
    the test's, so how fast the machine answers changes nothing."""
    app, _ = app_server
    clock = [1000.0]
    monkeypatch.setattr(app.service.inside, "rounds", spot.Rounds(counted_per_hour=3, clock=lambda: clock[0]))
    before = app.service.inside.spot_record("classic")["judgements"]
    answers = []
    for i in range(12):
        round_id, _ = client.predict(model="classic", api_name="/spot_round")
        clock[0] += spot.MIN_ANSWER_S if i % 2 else 0.1  # every other one looked at as long as a person would
        answers.append(client.predict(round_id=round_id, marked=[], api_name="/spot_answer"))
    assert [a["counted"] for a in answers] == [False, True] * 3 + [False] * 6
    assert {a["not_counted"] for a in answers[::2]} == {f"answered within {spot.MIN_ANSWER_S:g} s of the round"}
    assert "more than 3 rounds from your address" in answers[-1]["not_counted"]
    assert app.service.inside.spot_record("classic")["judgements"] == before + 3 * 8


def test_heavy_calls_are_bounded(client, files):
    with pytest.raises(AppError, match="restarts must be a whole number from 1 to 16"):
        client.predict(model="classic", image=handle_file(str(files / "one.png")), restarts=100, api_name="/invert")
    with pytest.raises(AppError, match="steps must be a whole number from 1 to 32"):
        client.predict(model="classic", image=handle_file(str(files / "one.png")), steps=1000, api_name="/d_pull")


def test_a_jpeg_upload_is_any_size(client, files):
    report, *_ = client.predict(model="classic", image=handle_file(str(files / "seven.jpg")),
                                api_name="/discriminate")
    assert isinstance(report["score"], float) and report["origin"] == "your picture, after MNIST's preprocessing"


def test_the_drawing_pads_picture_is_decoded_bounded_and_checked():
    """The pad sends its canvas as a PNG data URL (no upload): the same bytes come out; anything else is refused."""
    import base64
    import io

    from mnist_gan.errors import InvalidInput
    from ui.inside import DATA_URL, MAX_DRAWING_CHARS, drawn

    buffer = io.BytesIO()
    Image.fromarray(np.full((280, 280), 255, np.uint8)).save(buffer, format="PNG")
    assert drawn(DATA_URL + base64.b64encode(buffer.getvalue()).decode()) == buffer.getvalue()
    assert drawn("") is None and drawn(None) is None
    for bad in ("data:image/jpeg;base64,AAAA", DATA_URL + "not base64!", DATA_URL + "A" * MAX_DRAWING_CHARS, 7,
                {"composite": {"path": "/etc/passwd"}}):
        with pytest.raises(InvalidInput, match="drawing pad's PNG"):
            drawn(bad)


@pytest.mark.slow
def test_drawings_sent_at_once_are_decoded_in_bounded_memory(tmp_path):
    """Three waves of four drawing-pad sends at once, each a 4096 x 4096 mostly transparent RGBA picture (the
    largest the app reads; a lossless WEBP of a few hundred bytes) under the pad's data URL, which names PNG but
    may carry any picture: once they raised the app's high-water mark by 800 MB, as every decode made full-size
    float copies; now each is shrunk in 8-bit channels first."""
    import base64
    import secrets
    from concurrent.futures import ThreadPoolExecutor

    from testing.app import AppProcess
    from testing.crowd import PageConfig
    from testing.pictures import picture
    from ui.inside import DATA_URL

    def look(app, cfg, drawing: bytes) -> dict:
        """The page's "Look inside" with `drawing` on the pad; gradio's last message for it."""
        dep = cfg.on[(cfg.ids["inside-look"], "click")][0]
        values = cfg.initial() | {cfg.ids["inside-source"]: "picture",
                                  cfg.ids["inside-pad"]: DATA_URL + base64.b64encode(drawing).decode()}
        session = secrets.token_hex(8)
        with httpx.Client(timeout=120) as http:
            joined = http.post(app.url + "gradio_api/queue/join", json={
                "data": [None if cfg.is_state(i) else values.get(i) for i in dep["inputs"]], "fn_index": dep["id"],
                "trigger_id": cfg.ids["inside-look"], "session_hash": session})
            assert joined.status_code == 200, joined.text
            with http.stream("GET", app.url + "gradio_api/queue/data", params={"session_hash": session}) as events:
                for line in events.iter_lines():
                    message = json.loads(line[5:]) if line.startswith("data:") else {}
                    if message.get("msg") in ("process_completed", "unexpected_error"):
                        return message
        raise AssertionError("the stream ended without an answer")

    def said_real_or_fake(message: dict) -> bool:
        return message.get("success") is True and "D says" in json.dumps(message["output"]["data"])

    worst = picture("rgba-webp")
    assert len(DATA_URL) + len(base64.b64encode(worst)) < 200_000  # the pad's limit lets it through
    with AppProcess(tmp_path) as app:
        cfg = PageConfig(app.http.get(app.url + "config").json())
        assert said_real_or_fake(look(app, cfg, picture("rgba-png", side=280)))  # D and the decoder warmed up
        before = app.rss()[app.process.pid][1]
        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):
                answers = list(pool.map(lambda _: look(app, cfg, worst), range(4)))
                assert all(map(said_real_or_fake, answers)), answers
        grown = app.rss()[app.process.pid][1] - before
        print(f"high-water mark: +{grown:.0f} MB over 12 worst-case drawings, 4 at a time")
        assert grown < 400, grown  # each decode peaks under ~100 MB; two run at once (the "inside" group)


def test_a_look_sets_off_the_style_grid_only_for_a_class_conditional_model(app_server):
    """The page plays the Look as a browser would (the crowd's driver, which follows the page's event graph): a
    Look of mlp-cond is followed by its z's style grid and morph, set off by the page's `styled` state; a Look of
    classic or mlp-uncond sends that second event no more (it used to, to be answered with three skips)."""
    import asyncio

    from testing.crowd import Figures, Page, PageConfig, Visitor

    _, url = app_server
    cfg = PageConfig(httpx.get(url + "config", timeout=60).json())

    async def look(model: str):
        figures = Figures()
        visitor = Visitor(0, url, cfg, figures, [], "browser")
        try:
            page = Page(visitor)
            await page.open()
            page.values[cfg.ids["model"]] = model
            page.show_tab("Inside the GAN", "look inside")
            page.values[cfg.ids["inside-source"]] = "test"
            page.trigger("inside-source", "change", "look inside")
            assert await page.settle()
            events = len([r for r in figures.requests if r["what"].startswith("event ")])
            page.values[cfg.ids["inside-index"]] = 3
            page.trigger("inside-look", "click", "look inside")
            assert await page.settle()
            await page.close()
        finally:
            await visitor.http.close()
        assert not figures.errors, figures.errors
        sent = [r["what"] for r in figures.requests if r["what"].startswith("event ")][events:]
        return sent, page.values.get(cfg.ids["inside-style-img"]), page.values.get(cfg.ids["inside-histogram"])

    for model, events, styled in (("mlp-cond", 2, True), ("classic", 1, False), ("mlp-uncond", 1, False)):
        sent, style, histogram = asyncio.run(look(model))
        assert len(sent) == events and histogram, (model, sent)
        assert bool(style) == styled, (model, style)
