"""The generator in the visitor's browser, in headless Chromium: for every shipped model, the canvases hold the
server's pixels (within one grey level) for a Generate grid, the explorer's digit after its sliders moved (both
modes) and an interpolation strip; switching models loads each file once; the page's pixel functions equal
numpy's; and when the runtime cannot run (blocked, no WebAssembly SIMD, a tampered CDN file) or a model has no
browser file yet, the server draws and one line says so and why."""

import shutil

import numpy as np
import pytest

from mnist_gan.images import make_grid, to_uint8
from mnist_gan.inside.directions import move
from mnist_gan.model.generator import shipped_models
from mnist_gan.serving.drawing import ALL_DIGITS
from testing.app import served_app
from testing.browser import browser as chromium
from testing.browser import canvas_grey, image_grey, panel_state, wait_for_grid, wait_for_panel
from testing.system import wait_until
from mnist_gan.serving.web_runtime import CDN as ORT_CDN
from mnist_gan.serving.web_runtime import FILES as ORT_FILES
from ui.in_browser import ORT_DIST, ORT_DIST_ENV

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not ORT_DIST.is_dir(), reason=(
    "no local copy of onnxruntime-web: run `npm ci` (.ci/run does); the tests never fetch it from a CDN"))]
MODELS = list(shipped_models())  # mlp-uncond (the default), classic, mlp-cond
SIZE = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def open_page(browser, url, context_options=None, before=None):
    context = browser.new_context(viewport=SIZE, **(context_options or {}))
    page = context.new_page()
    if before:
        before(page)
    page.goto(url)
    wait_for_grid(page)
    return context, page


def done(page, name: str) -> int:
    return (panel_state(page, name) or {"done": 0})["done"]


def choose(page, selector: str, option: str) -> None:
    page.locator(f"{selector} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def use_model(page, name: str) -> None:
    """Choose a model in the picker; wait until each picture on the page is of it (gradio builds a tab when it is
    first shown: an unvisited tab has none)."""
    if page.locator("#model input").input_value() != name:
        since = {panel: done(page, panel) for panel in ("grid", "latent", "strip") if panel_state(page, panel)}
        choose(page, "#model", name)
        for panel in since:
            wait_for_panel(page, panel, since[panel], model=name)


def settled(page, name: str, index: int, value: float) -> dict:
    """A panel's state once it has been asked for settings whose `index`-th is `value`, and is done."""
    return wait_until(lambda: (s := panel_state(page, name)) and not s["busy"] and
                      s["values"][index] == pytest.approx(value) and s, 30, f"the {name} picture at {value}")


def close(array: np.ndarray, expected: np.ndarray) -> int:
    assert array.shape == expected.shape
    return int(np.abs(array.astype(int) - expected.astype(int)).max())


def grid_matches(page, drawing, model, seed, n, digit=ALL_DIGITS, temperature=1.0) -> None:
    state = panel_state(page, "grid")
    assert state["last"]["mode"] == "browser", state
    assert state["values"] == [model, seed, n, digit, temperature]
    assert close(canvas_grey(page, "#grid-panel canvas"), drawing.generate(model, seed, n, digit, temperature)) <= 1


def press(page, slider: int, presses: int) -> None:
    page.locator(f"#slider-{slider} input[type=range]").focus()
    for _ in range(abs(presses)):
        page.keyboard.press("ArrowRight" if presses > 0 else "ArrowLeft")


def digit_matches(page, drawing, slider: int, value: float) -> list:
    state = settled(page, "latent", 5 + slider, value)  # model, seed, digit, mode, start, then the sliders
    assert state["last"]["mode"] == "browser", state
    model, seed, digit, mode, start, *amounts = state["values"]
    shown = [float(page.locator(f"#slider-{i} input[type=number]").input_value() or 0) for i in range(3)]
    assert shown == pytest.approx(amounts[:3])  # what the page drew is what the sliders say
    assert close(canvas_grey(page, "#latent-panel canvas"), drawing.latent(model, seed, digit, mode, amounts, start)) <= 1
    return amounts


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_shipped_model_draws_the_servers_pixels(browser, app_server, model):
    app, url = app_server
    drawing = app.service.drawing
    context, page = open_page(browser, url)
    try:
        use_model(page, model)
        conditional = app.service.library.info(model)["conditional"]
        # Generate: a new seed, a grid size and temperature; a conditional model's digit
        since = done(page, "grid")
        page.locator("#seed input").fill("3")
        page.locator("#seed input").press("Enter")
        wait_for_panel(page, "grid", since)
        grid_matches(page, drawing, model, 3, 64)
        since = done(page, "grid")
        page.locator("#count input[type=number]").fill("30")
        page.locator("#temperature input[type=number]").fill("0.7")
        if conditional:
            choose(page, "#gen-digit", "4")
        page.locator("#generate-btn").click()
        wait_for_panel(page, "grid", since)
        grid_matches(page, drawing, model, 3, 30, "4" if conditional else ALL_DIGITS, 0.7)

        # the explorer: its sliders moved, in both modes; a conditional model's digit
        page.get_by_role("tab", name="Latent explorer").click()
        wait_for_panel(page, "latent", model=model)
        if conditional:
            since = done(page, "latent")
            choose(page, "#latent-digit", "5")
            wait_for_panel(page, "latent", since)
        press(page, 0, 12)
        press(page, 2, -7)
        amounts = digit_matches(page, drawing, 2, -0.7)
        assert amounts[0] == pytest.approx(1.2)
        since = done(page, "latent")
        page.locator("#mode").get_by_text("raw dimensions").click()
        wait_for_panel(page, "latent", since)
        press(page, 1, 15)
        digit_matches(page, drawing, 1, 1.5)

        # the interpolation strip
        since = done(page, "strip")
        page.locator("#seed-a input").fill("4")
        page.locator("#seed-b input").fill("11")
        page.locator("#frames input[type=number]").fill("9")
        page.locator("#interpolate-btn").click()
        state = wait_for_panel(page, "strip", since)
        assert state["last"]["mode"] == "browser" and state["values"][:4] == [model, 4, 11, 9]
        strip, _ = drawing.interpolate(model, 4, 11, 9, state["values"][4])
        assert close(canvas_grey(page, "#strip-panel canvas.mg-canvas"), strip) <= 1
    finally:
        context.close()


def test_switching_models_loads_each_file_once(browser, app_server):
    app, url = app_server
    fetched = []
    context, page = open_page(browser, url, before=lambda p: p.on(
        "request", lambda r: fetched.append(r.url) if r.url.endswith(".onnx") else None))
    try:
        wait_for_panel(page, "grid", model="mlp-uncond")
        for model in ("classic", "mlp-cond", "mlp-uncond", "classic"):
            use_model(page, model)
            grid_matches(page, app.service.drawing, model, 0, 64)
        assert page.evaluate("window.mnistGan.runtime.sessions.size") == 3  # one per model, kept
        assert len(fetched) == len(set(fetched)) == 3  # each file once
        assert all("/web-assets/" in u for u in fetched)
    finally:
        context.close()


def test_the_pages_pixel_functions_are_numpys(browser, app_server):
    """toUint8, makeGrid and move in the page, against images.to_uint8, images.make_grid and directions.move."""
    _, url = app_server
    context, page = open_page(browser, url)
    try:
        edges = (np.arange(-1, 256) + 0.5) / 127.5 - 1  # every half-level, where rounding decides
        values = np.concatenate([edges, np.nextafter(edges.astype(np.float32), np.float32(2)),
                                 np.nextafter(edges.astype(np.float32), np.float32(-2)), [-3, -1, 0, 1, 3],
                                 np.random.default_rng(0).uniform(-1.2, 1.2, 20_000)]).astype(np.float32)
        got = page.evaluate("(x) => Array.from(window.mnistGan.toUint8(Float32Array.from(x)))", values.tolist())
        np.testing.assert_array_equal(np.asarray(got, np.uint8), to_uint8(values))

        images = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
        for rows, cols, pad, scale in ((3, 3, 2, 2), (1, 7, 2, 3), (7, 1, 0, 1), (2, 4, 1, 5)):
            grid = page.evaluate("""([flat, n, rows, cols, pad, scale]) => {
                const g = window.mnistGan.makeGrid(Uint8Array.from(flat), n, rows, cols, pad, scale);
                return [g.width, g.height, Array.from(g.data)]; }""", [images.ravel().tolist(), 7, rows, cols, pad,
                                                                        scale])
            width, height, data = grid
            np.testing.assert_array_equal(np.asarray(data, np.uint8).reshape(height, width),
                                          make_grid(images, rows, cols, pad=pad, scale=scale))

        rng = np.random.default_rng(2)
        start = rng.standard_normal(100).astype(np.float32)
        vectors = rng.standard_normal((16, 100)).astype(np.float32)
        amounts = [round(float(a), 1) for a in rng.uniform(-4, 4, 16)]
        moved = page.evaluate("""([start, vectors, amounts]) => Array.from(window.mnistGan.move(
            Float32Array.from(start), Float32Array.from(vectors), 100, amounts))""",
                              [start.tolist(), vectors.ravel().tolist(), amounts])

        class Direction:
            def __init__(self, vector):
                self.vector = vector
        np.testing.assert_array_equal(np.asarray(moved, np.float32), move(start, [Direction(v) for v in vectors],
                                                                          amounts))  # bit for bit
    finally:
        context.close()


def block_runtime(page):
    page.route("**/ort*", lambda route: route.abort())


def no_simd(page):
    page.add_init_script("WebAssembly.validate = () => false;")


@pytest.mark.parametrize("broken, reason", [(block_runtime, "the in-browser runtime did not load"),
                                            (no_simd, "this browser has no WebAssembly SIMD")],
                         ids=["runtime-blocked", "no-simd"])
def test_without_the_runtime_the_server_draws_and_says_why(browser, app_server, broken, reason):
    app, url = app_server
    drawing = app.service.drawing
    context, page = open_page(browser, url, before=broken)
    try:
        state = wait_for_panel(page, "grid")
        assert state["last"] == {"mode": "server", "reason": reason, "ms": None}
        assert page.locator("#grid-panel .mg-where").inner_text() == f"drawn on the server: {reason}"
        assert not page.locator("#grid-panel canvas").is_visible() and page.locator("#grid img").is_visible()
        wait_until(lambda: close(image_grey(page, "#grid"), drawing.generate("mlp-uncond", 0, 64)) == 0, 30,
                   "the server's grid")
        page.get_by_role("tab", name="Latent explorer").click()
        wait_for_panel(page, "latent", model="mlp-uncond")
        press(page, 0, 5)
        state = settled(page, "latent", 5, 0.5)
        assert state["last"]["mode"] == "server"
        model, seed, digit, mode, start, *amounts = state["values"]
        wait_until(lambda: close(image_grey(page, "#latent"), drawing.latent(model, seed, digit, mode, amounts)) == 0,
                   30, "the server's digit")
        assert page.locator("#latent-panel .mg-where").inner_text() == f"drawn on the server: {reason}"
        assert page.locator("#strip img").is_visible()
    finally:
        context.close()


@pytest.mark.slow
def test_a_model_without_a_browser_file_is_drawn_on_the_server_until_the_app_has_made_one(browser, app_server,
                                                                                          tmp_path):
    app, url = app_server
    folder = tmp_path / "trained"
    shutil.copytree(shipped_models()["classic"], folder, ignore=shutil.ignore_patterns("generator.onnx*"))
    app.service.library.add("20261206-120000-classic", folder, "trained here (1 steps)")
    context, page = open_page(browser, url)
    try:
        since = done(page, "grid")
        choose(page, "#model", "20261206-120000-classic")
        state = wait_for_panel(page, "grid", since, model="20261206-120000-classic")
        assert state["last"] == {"mode": "server", "reason": "this model's browser file is being made", "ms": None}

        # once the app has exported it, the page draws the same grid again, itself
        wait_until(lambda: (s := panel_state(page, "grid"))["last"]["mode"] == "browser" and not s["busy"], 120,
                   "the model drawn in the browser", every=0.5)
        grid_matches(page, app.service.drawing, "20261206-120000-classic", 0, 64)
    finally:
        context.close()
        app.service.library.remove("20261206-120000-classic")


def cdn(tamper: str | None = None):
    """Plays jsDelivr from the npm files (`tamper`: a file whose last byte is changed), with its CORS header."""

    def install(page):
        def answer(route):
            name = route.request.url.rsplit("/", 1)[1]
            if name not in ORT_FILES.values():
                return route.abort()
            body = (ORT_DIST / name).read_bytes()
            if name == tamper:
                body = body[:-1] + bytes([body[-1] ^ 1])
            kind = "application/wasm" if name.endswith(".wasm") else "text/javascript"
            route.fulfill(status=200, body=body, content_type=kind, headers={"Access-Control-Allow-Origin": "*"})
        page.route(ORT_CDN + "*", answer)

    return install


@pytest.mark.slow
def test_the_cdn_copy_is_checked_against_npms_files(browser, tmp_path, monkeypatch):
    """Without a local copy the page loads onnxruntime-web from jsDelivr, each file checked by Subresource
    Integrity (here the CDN is played from the npm files: the tests never reach it); a changed file is refused."""
    monkeypatch.setenv(ORT_DIST_ENV, "")
    with served_app(tmp_path) as (demo, url):
        assert demo.mnist_gan_page.assets.runtime["source"] == "cdn"
        drawing = demo.mnist_gan_page.service.drawing
        for tamper, mode in ((None, "browser"), (ORT_FILES["wasm"], "server"), (ORT_FILES["mjs"], "server"),
                             (ORT_FILES["js"], "server")):
            requested = []
            context, page = open_page(browser, url, before=lambda p: (
                p.on("request", lambda r: requested.append(r.url)), cdn(tamper)(p)))
            try:
                wait_until(lambda: page.evaluate("window.mnistGan.runtime.state") in ("ready", "failed"), 120,
                           "the runtime")  # the page's first grid may come from the server while it loads
                since = done(page, "grid")
                page.locator("#generate-btn").click()
                state = wait_for_panel(page, "grid", since)
                assert state["last"]["mode"] == mode, (tamper, state)
                if mode == "browser":
                    assert close(canvas_grey(page, "#grid-panel canvas"), drawing.generate("mlp-uncond", 0, 64)) <= 1
                    assert {u for u in requested if "onnxruntime-web" in u} == {ORT_CDN + n for n in ORT_FILES.values()}
                else:
                    assert state["last"]["reason"] == "the in-browser runtime did not load"
                assert not [u for u in requested if "/web-assets/" in u and "/ort" in u]  # nothing local
            finally:
                context.close()


def test_the_files_are_served_once_per_browser(browser, app_server):
    """A second visit in the same browser fetches neither the runtime nor the model again (immutable URLs)."""
    _, url = app_server
    context = browser.new_context(viewport=SIZE)
    try:
        for visit in range(2):
            page = context.new_page()
            page.goto(url)
            wait_for_grid(page)
            wait_for_panel(page, "grid")
            cached = page.evaluate("""() => performance.getEntriesByType('resource')
                .filter(e => /\\.(wasm|onnx)$/.test(e.name)).map(e => [e.name, e.transferSize])""")
            if visit == 0:
                assert len(cached) == 2 and all(size > 0 for _, size in cached), cached
            else:
                assert all(size == 0 for _, size in cached), cached  # from the browser's cache, not asked again
            page.close()
    finally:
        context.close()
