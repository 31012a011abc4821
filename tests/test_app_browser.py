"""The app as a person uses it: headless Chromium (Debian's) driven by Playwright. Screenshots: tests/screenshots/."""

import io
import re
import time
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
from PIL import Image

from testing.browser import box, canvas_grey, label_clear_of_canvas, panel_state, wait_for_grid, wait_for_panel
from testing.browser import browser as chromium
from testing.hub_server import HubServer
from testing.system import wait_until

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent / "screenshots"
TOKEN = "hf_browserWrite8Jq8sT2vX9mN0pL"


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, app_server):
    _, url = app_server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    wait_for_grid(page)
    yield page
    context.close()


def shot(page, name: str) -> None:
    """A full-page screenshot; scrolled through first, so that images below the fold (loaded lazily) are there."""
    SHOTS.mkdir(exist_ok=True)
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        time.sleep(0.05)
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(0.5)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def slider_seen(page, elem: str) -> str:
    """What a slider shows (its label and number) and holds (its range's value and maximum), for a failure's message."""
    scrub = page.locator(f"{elem} input[type=range]")
    return (f"shown {page.locator(elem).inner_text()!r}, value {scrub.input_value()} of {scrub.get_attribute('max')}")


def step_shown(page) -> int:
    match = re.search(r"step ([\d,]+) of", page.locator("#status").inner_text())
    return int(match.group(1).replace(",", "")) if match else -1


def _done(page, name: str) -> int:
    return (panel_state(page, name) or {"done": 0})["done"]


def test_generate_a_new_seed_and_resample(page, app_server):
    drawing = app_server[0].service.drawing
    wait_for_panel(page, "grid")
    first = canvas_grey(page, "#grid-panel canvas")
    done = _done(page, "grid")
    page.locator("#seed input").fill("5")
    page.locator("#seed input").press("Enter")
    assert wait_for_panel(page, "grid", done)["last"]["mode"] == "browser"
    second = canvas_grey(page, "#grid-panel canvas")
    assert np.abs(second.astype(int) - drawing.generate("mlp-uncond", 5, 64)).max() <= 1
    done = _done(page, "grid")
    page.locator("#resample").click()
    wait_until(lambda: page.locator("#seed input").input_value() != "5", 20, "a new seed")
    wait_for_panel(page, "grid", done)
    seed = page.locator("#seed input").input_value()
    assert seed.isdigit() and 0 <= int(seed) < 2**32  # shown, so the grid can be drawn again
    resampled = canvas_grey(page, "#grid-panel canvas")
    assert not np.array_equal(resampled, second) and not np.array_equal(resampled, first)
    assert np.abs(resampled.astype(int) - drawing.generate("mlp-uncond", int(seed), 64)).max() <= 1
    # the link to this grid: the same picture, as a PNG at a permanent URL
    wait_until(lambda: f"seed={seed}" in (page.locator("#grid-link a").get_attribute("href") or ""), 20, "the link")
    href = page.locator("#grid-link a").get_attribute("href")
    assert href.startswith("png?model=mlp-uncond&") and "/" not in href.split("?")[0]
    linked = page.request.get(page.url.split("?")[0].rstrip("/") + "/" + href)
    assert linked.headers["content-type"] == "image/png"
    assert np.abs(np.asarray(Image.open(io.BytesIO(linked.body()))).astype(int) - resampled).max() <= 1
    assert "drawn in your browser" in page.locator("#grid-panel .mg-where").inner_text()
    assert label_clear_of_canvas(page, "#grid-panel")
    shot(page, "1-generate")


def test_latent_slider_moves_the_image_while_dragging(page):
    page.get_by_role("tab", name="Latent explorer").click()
    wait_for_panel(page, "latent")
    assert page.locator("#slider-0").get_by_text("thicker strokes").is_visible()
    # the default model is unconditional: 6 style directions, then "more like a k" for every digit
    assert sum(page.locator(f"#slider-{i}").is_visible() for i in range(16)) == 16
    assert page.locator("#slider-15").get_by_text("more like a 9").is_visible()
    before = canvas_grey(page, "#latent-panel canvas")
    slider = page.locator("#slider-0 input[type=range]").bounding_box()
    y = slider["y"] + slider["height"] / 2
    page.mouse.move(slider["x"] + slider["width"] / 2, y)
    page.mouse.down()
    seen = []
    for i in range(1, 11):  # drag right in small moves, looking at the image before letting go
        page.mouse.move(slider["x"] + slider["width"] * (0.5 + 0.045 * i), y)
        time.sleep(0.25)
        seen.append(canvas_grey(page, "#latent-panel canvas").tobytes())
    page.mouse.up()
    assert len(set(seen) - {before.tobytes()}) >= 2, "the image did not follow the slider during the drag"
    assert float(page.locator("#slider-0 input[type=number]").input_value()) > 1.5
    assert label_clear_of_canvas(page, "#latent-panel")
    shot(page, "2-latent-explorer")

    page.locator("#reset").click()
    wait_until(lambda: page.locator("#slider-0 input[type=number]").input_value() == "0", 20, "the reset")
    wait_until(lambda: np.array_equal(canvas_grey(page, "#latent-panel canvas"), before), 20,
               "the seed's own digit after reset")

    strip = canvas_grey(page, "#strip-panel canvas.mg-canvas")
    done = _done(page, "strip")
    page.locator("#seed-b input").fill("9")
    page.locator("#interpolate-btn").click()
    wait_for_panel(page, "strip", done)
    assert not np.array_equal(canvas_grey(page, "#strip-panel canvas.mg-canvas"), strip)
    frames = set()
    for _ in range(6):  # the animation plays (80 ms a frame)
        frames.add(canvas_grey(page, "#strip-panel canvas.mg-moving").tobytes())
        time.sleep(0.1)
    assert len(frames) >= 2
    assert label_clear_of_canvas(page, "#strip-panel")  # it used to cover the first frames


def test_train_watch_reload_stop_and_use_the_model(page, browser, app_server):
    app, url = app_server
    wait_until(lambda: not app.service.training.status().state.active, 600, "an earlier run")
    page.get_by_role("tab", name="Train").click()
    page.locator("#data").get_by_text("bundled sample").click()
    page.locator("#train-steps input").fill("3000")
    page.locator("#train-batch-size input").fill("16")  # a quick run: the form's default (64) is sized for real training
    previous = app.service.training.status().run  # an earlier test's run may still be on screen
    page.locator("#start").click()

    def new_run():
        match = re.search(r"\d{8}-\d{6}-classic\S*", page.locator("#status").inner_text())
        return match and match.group(0) != previous and step_shown(page) >= 40 and match.group(0)

    run = wait_until(new_run, 600, "the first steps of a new run")
    plot = page.locator("#acc-plot").screenshot()
    early = step_shown(page)
    wait_until(lambda: step_shown(page) > early + 100, 600, "more steps")
    # the curves come by an event of their own, which the status's update sets off: they follow it, not with it
    wait_until(lambda: page.locator("#acc-plot").screenshot() != plot, 60, "the accuracy plot to advance")
    assert not page.locator("#start").is_enabled()  # one run at a time

    page.reload()  # the run lives outside the page
    page.get_by_role("tab", name="Train").click()
    wait_until(lambda: step_shown(page) > early + 100, 30, "the run after a reload")
    assert run in page.locator("#status").inner_text()
    other = browser.new_page()  # a second tab watches the same run
    other.goto(url)
    other.get_by_role("tab", name="Train").click()
    wait_until(lambda: step_shown(other) > early, 30, "the run in a second tab")
    assert run in other.locator("#status").inner_text()
    other.close()

    # the atlas scrubbed back stays there as the run makes more (it once jumped to each new one), and follows the
    # run again once scrubbed to the end
    page.get_by_text("Latent atlas").click()
    wait_until(lambda: page.locator("#atlas img").count() == 1, 30, "the atlas")
    scrub = page.locator("#atlas-scrub input[type=range]")
    first = f"Atlas at step {app.service.training.status().atlas_steps[0]:,}"
    scrub.press("Home")
    wait_until(lambda: first in page.locator("#atlas-scrub").inner_text(), 30, "the first atlas")
    made = len(app.service.training.status().atlas_steps)
    wait_until(lambda: int(scrub.get_attribute("max")) >= made + 1, 120, "two more atlases on the page")
    assert first in page.locator("#atlas-scrub").inner_text()
    training = app.service.training  # paused, so that no atlas arrives while the end is being scrubbed to
    training.pause()
    wait_until(lambda: training.status().state == "paused", 120, "the pause")
    wait_until(lambda: int(scrub.get_attribute("max")) == len(training.status().atlas_steps) - 1, 30, "every atlas")
    scrub.press("End")
    last = f"Atlas at step {training.status().atlas_steps[-1]:,}"
    wait_until(lambda: last in page.locator("#atlas-scrub").inner_text(), 30, "the last atlas")
    made = len(training.status().atlas_steps)
    training.resume()
    wait_until(lambda: int(scrub.get_attribute("max")) >= made
               and f"Atlas at step {training.status().atlas_steps[int(scrub.get_attribute('max'))]:,}"
               in page.locator("#atlas-scrub").inner_text(), 120, "the latest atlas followed again")
    wait_until(lambda: step_shown(page) >= 1200, 600, "1,200 steps")  # enough for digit-like strokes
    page.locator("#stop").click()
    wait_until(lambda: "stopped" in page.locator("#status").inner_text(), 600, "the stop")
    # pages opened once the run has stopped, their Train tab shown at once or a few seconds later, then the latent
    # atlas opened: each shows the run's last sample grid and atlas (gradio once lost pictures sent to a tab not
    # shown yet, or to a closed accordion: empty for good)
    status = app.service.training.status()
    for delay in (0, 3):
        later = browser.new_page()
        later.goto(url)
        wait_for_grid(later)
        time.sleep(delay)
        later.get_by_role("tab", name="Train").click()
        wait_until(lambda: later.locator("#train-grid img").count() == 1, 30, "the last sample grid")
        assert later.locator("#train-grid img").get_attribute("src"), delay
        assert f"Sample grid at step {status.sample_steps[-1]:,}" in later.locator("#scrub").inner_text(), delay
        time.sleep(delay)
        later.get_by_text("Latent atlas").click()
        wait_until(lambda: later.locator("#atlas img").count() == 1, 30, "the last atlas")
        assert f"Atlas at step {status.atlas_steps[-1]:,}" in later.locator("#atlas-scrub").inner_text(), delay
        if delay:  # scrubbed back to the first atlas, another tab shown, this one again: the atlas stays there
            first = f"Atlas at step {status.atlas_steps[0]:,}"
            later.locator("#atlas-scrub input[type=range]").press("Home")
            wait_until(lambda: first in later.locator("#atlas-scrub").inner_text(), 30, "the first atlas",
                       describe=lambda: slider_seen(later, "#atlas-scrub"))
            later.get_by_role("tab", name="Generate").click()
            later.get_by_role("tab", name="Train").click()
            for _ in range(30):  # the tab's select event answers in milliseconds; it once moved the atlas to the last
                assert first in later.locator("#atlas-scrub").inner_text()
                time.sleep(0.1)
            assert later.locator("#atlas img").count() == 1
        later.close()
    wait_until(lambda: page.locator("#use").is_enabled(), 30, "Use this model")
    shot(page, "3-train")
    page.locator("#use").click()
    wait_until(lambda: run in page.locator("#model-info").inner_text(), 30, "the run as the active model")
    page.get_by_role("tab", name="Generate").click()
    wait_until(lambda: run in page.locator("#model input").input_value(), 10, "the model picker")
    shot(page, "4-generate-with-the-run")


def test_hub_push_then_pull(page, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the local server offers no Xet
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with HubServer({TOKEN: ("carol", True)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        page.get_by_role("tab", name="Hub").click()
        page.locator("#push-repo input, #push-repo textarea").first.fill("carol/digits")
        page.locator("#push-token input, #push-token textarea").first.fill(TOKEN)
        page.locator("#push-btn").click()
        wait_until(lambda: "Pushed" in page.locator("#hub-result").inner_text(), 60, "the push")
        sha = re.search(r"commit ([0-9a-f]{40})", page.locator("#hub-result").inner_text()).group(1)
        assert TOKEN not in page.content()  # the token field is a password field, its value never shown back
        page.locator("#pull-repo input, #pull-repo textarea").first.fill("carol/digits")
        page.locator("#pull-btn").click()
        wait_until(lambda: "Pulled" in page.locator("#hub-result").inner_text(), 60, "the pull")
        assert sha in page.locator("#hub-result").inner_text()
        wait_until(lambda: f"carol/digits@{sha[:7]}" in page.locator("#model-info").inner_text(), 30,
                   "the pulled model as the active model")
        shot(page, "5-hub")
        page.locator("#pull-repo input, #pull-repo textarea").first.fill("carol/nothing-here")
        page.locator("#pull-btn").click()
        wait_until(lambda: page.get_by_text("not found").count() > 0, 30, "a plain error message")
        assert "Traceback" not in page.content()


def _covered(page, selector: str) -> str | None:
    """What the page shows at the centre of `selector` when that is something else (an overlay), else None."""
    return page.locator(selector).first.evaluate("""(e) => { const r = e.getBoundingClientRect();
      const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
      return top === e || e.contains(top) ? null : (top ? top.outerHTML.slice(0, 200) : 'nothing'); }""")


def test_a_failed_pull_shows_its_error_beside_the_pull_and_keeps_the_model_picker(page, monkeypatch):
    """A pull that fails says why in the Hub tab, where the visitor asked, and leaves the header's model picker as
    it was: it once put a red "Error" box over the picker, with the reason only in a toast that fades."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with HubServer({TOKEN: ("carol", True)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)  # the local server: nothing leaves the machine
        model = page.locator("#model input").input_value()
        page.get_by_role("tab", name="Hub").click()
        page.locator("#pull-repo input, #pull-repo textarea").first.fill("carol/nothing-here")
        page.locator("#pull-btn").click()
        wait_until(lambda: page.get_by_text("not found").count() > 0, 60, "the pull's refusal")
        picker = page.locator("#model")
        # an update of the picker chained to the pull is under way by the time the refusal shows: let it end
        settled = picker.locator("[data-testid=status-tracker]")
        wait_until(lambda: "hide" in settled.get_attribute("class").split() or picker.locator(".error").count(), 30,
                   "the picker's update, if any, to end")
        assert page.locator("#model input").input_value() == model
        assert picker.locator(".error").count() == 0, picker.inner_text()  # gradio's red "Error" of a failed output
        assert _covered(page, "#model input") is None, _covered(page, "#model input")
        hub_tab = page.locator("[role=tabpanel]:visible")  # the tab's own content: toasts live outside it
        assert hub_tab.locator("#pull-btn").count() == 1
        wait_until(lambda: hub_tab.get_by_text("not found").first.is_visible(), 10, "the reason in the Hub tab",
                   describe=lambda: f"the Hub tab shows {hub_tab.inner_text()!r}")
        shot(page, "5-hub-failed-pull")


PHONE = {"width": 390, "height": 844}
TABS = ("Generate", "Latent explorer", "Inside the GAN", "Train", "Hub")


def test_every_tab_on_a_phone(browser, app_server):
    _, url = app_server
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(url)
        wait_for_grid(page)
        wait_for_panel(page, "grid")
        for name in TABS:  # every tab in view, none behind a "..." menu
            assert page.get_by_role("tab", name=name).is_visible(), name
        tabs = [box(page, f"[role=tab][data-tab-id={key}]") for key in ("generate", "latent", "inside", "train", "hub")]
        assert max(t["x"] + t["width"] for t in tabs) <= PHONE["width"]
        # the picture first, the controls that make it below; its label above it, not over its first digits
        assert box(page, "#grid-panel canvas")["y"] < box(page, "#seed")["y"]
        assert box(page, "#grid-panel canvas")["y"] < PHONE["height"]
        assert box(page, "#grid-panel canvas")["width"] <= PHONE["width"]  # shrunk to fit, never cut off
        assert label_clear_of_canvas(page, "#grid-panel")
        shot(page, "phone-1-generate")
        for number, (name, ready) in enumerate(zip(TABS[1:], ("#latent-panel canvas", "#inside-pad canvas",
                                                                          "#status", "#push-btn")), start=2):
            page.get_by_role("tab", name=name).click()
            page.wait_for_selector(ready, timeout=30_000)
            time.sleep(1)
            if name == "Latent explorer":  # the digit above its controls
                wait_for_panel(page, "latent")
                assert box(page, "#latent-panel canvas")["y"] < box(page, "#randomize")["y"]
                assert label_clear_of_canvas(page, "#latent-panel")
            if name == "Train":  # what a visitor watches first, the form that starts a run below
                assert box(page, "#status")["y"] < box(page, "#start")["y"]
            shot(page, f"phone-{number}-{name.split()[0].lower()}")
    finally:
        context.close()


def _evaluations(count: int) -> list[dict]:
    """Quality rows as a run records them: cFID every 2,500 steps, falling, with many decimals."""
    return [{"step": 2_500 * (i + 1), "cfid": 8.564708 / (1 + 0.37 * i)} for i in range(count)]


def test_plot_axes_read_well_with_one_two_and_many_points(browser):
    """The Train tab's quality plot (its formats, rows and title) with one, two and 40 evaluations: no tick reads
    like "2,500.000000" or "8.564708" (Vega's default for a plot of one point)."""
    import gradio as gr

    from testing.system import free_port
    from ui.train import QUALITY, STEP_AXIS, VALUE_AXIS, long_rows, quality_title

    counts = (1, 2, 40)
    with gr.Blocks() as demo:
        for count in counts:
            rows = _evaluations(count)
            gr.LinePlot(long_rows(rows, QUALITY), x="step", y="value", color="series", height=220,
                        title=quality_title(rows), y_title="cFID", elem_id=f"plot-{count}", **STEP_AXIS,
                        **VALUE_AXIS)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        for count in counts:
            ticks = f"#plot-{count} svg .role-axis-label text"
            wait_until(lambda: page.locator(ticks).count() >= 2, 30, f"the axes of the plot of {count}")
            labels = [t.strip() for t in page.locator(ticks).all_text_contents() if t.strip()]
            steps = [t for t in labels if "," in t or t.isdigit() and int(t) >= 1000]
            assert steps and all(re.fullmatch(r"\d{1,3}(,\d{3})*", t) for t in steps), (count, labels)
            assert not [t for t in labels if re.search(r"\.\d{4,}", t)], (count, labels)  # 3 significant digits
        assert page.locator("#plot-1").get_by_text("cFID 8.56 at step 2,500").is_visible()
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "plots-1-2-40-points.png"), full_page=True)
    finally:
        context.close()
        demo.close()


def _status_step(page) -> int:
    """The step #status shows, read from the DOM: the Train tab's updates reach it while the tab is hidden too."""
    match = re.search(r"step ([\d,]+) of", page.locator("#status").text_content() or "")
    return int(match.group(1).replace(",", "")) if match else -1


def _plots_left_alone(page) -> None:
    """Until the Train tab has had an update that left its plots as they were, which is what once broke them: two
    updates less than PLOT_EVERY_S apart whose steps grew by less than PLOT_GROWTH (the server redraws the plots
    only past either), so at least one of the two kept them."""
    from ui.train import PLOT_EVERY_S, PLOT_GROWTH

    seen = []  # (when, step) of each update

    def kept() -> bool:
        step = _status_step(page)
        if step > 0 and (not seen or step != seen[-1][1]):
            seen.append((time.monotonic(), step))
        return len(seen) >= 2 and seen[-1][1] < PLOT_GROWTH * seen[-2][1] and \
            seen[-1][0] - seen[-2][0] < PLOT_EVERY_S

    wait_until(kept, 180, "an update that leaves the Train tab's plots alone", describe=lambda: f"steps {seen}")


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_page_logs_no_javascript_error_on_any_tab(browser, app_server, screen):
    """Every tab shown, and Train shown again after another tab while a run updates it, with nothing thrown or
    logged as an error in the page: the Train tab's plots once failed when shown again ("Cannot read properties
    of undefined (reading 'step')"), and a phone once logged "(reading 'indexOf')"."""
    app, url = app_server
    training = app.service.training
    wait_until(lambda: not training.status().state.active, 600, "an earlier run")
    training.start(data="sample", steps=100_000, batch_size=16)  # stopped below: only its first steps are watched
    screens = {"desktop": {"viewport": {"width": 1280, "height": 900}},
               "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True}}
    context = browser.new_context(**screens[screen])
    errors = []

    def logged(error: str) -> None:
        print(error)  # shown with a failure, even one that an error made the page time out on
        errors.append(error)

    page = context.new_page()
    page.on("pageerror", lambda e: logged(f"uncaught: {e.stack or e}"))
    page.on("console", lambda m: logged(f"console: {m.text} at {m.location}") if m.type == "error" else None)

    def train_shown() -> None:
        """The Train tab on screen, updated since it was shown, its plots drawn."""
        page.get_by_role("tab", name="Train").click()
        before = _status_step(page)
        wait_until(lambda: step_shown(page) > before, 180, f"a step past {before}")
        for plot in ("#acc-plot", "#loss-plot"):
            page.locator(f"{plot} svg .role-axis").first.wait_for(state="visible", timeout=30_000)

    try:
        page.goto(url)
        wait_for_grid(page)
        wait_for_panel(page, "grid")
        page.get_by_role("tab", name="Latent explorer").click()
        wait_for_panel(page, "latent")
        page.get_by_role("tab", name="Inside the GAN").click()
        page.locator("#inside-pad canvas").wait_for(state="visible", timeout=30_000)
        train_shown()
        page.get_by_role("tab", name="Hub").click()
        page.locator("#push-btn").wait_for(state="visible", timeout=30_000)
        _plots_left_alone(page)
        train_shown()
        page.get_by_role("tab", name="Generate").click()
        page.locator("#seed").wait_for(state="visible", timeout=30_000)
        _plots_left_alone(page)
        train_shown()
    except Exception:
        assert not errors, "\n\n".join(errors)  # what broke the page, rather than what it then failed to show
        raise
    finally:
        context.close()
        if training.status().state.active:  # a run that failed has nothing to stop, and its error is the one to see
            training.stop()
        wait_until(lambda: not training.status().state.active, 120, "the run to stop")
    assert not errors, "\n\n".join(errors)
