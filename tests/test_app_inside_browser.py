"""Inside the GAN as a person uses it, in headless Chromium: draw a digit with the mouse, see D's verdict, its
heatmap and the digit found in latent space, open it in the Latent explorer, and play a round of spot the fake
(the round's answer must not reach the page before the answer). Screenshots: tests/screenshots/."""

import re
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_gan.inside import spot
from testing.browser import browser as chromium
from testing.browser import (canvas_grey, label_clear_of_image, panel_state, wait_for_grid, wait_for_panel,
                             wait_for_text)
from testing.system import wait_until

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


# Keeps a copy of everything the server streams to the page (gradio's event streams are fetch streams or
# EventSources that stay open; playwright's response bodies wait for their end)
RECORD = """() => {
  window.__received = [];
  const fetch0 = window.fetch;
  window.fetch = async (...args) => {
    const response = await fetch0(...args);
    const url = String(args[0] && args[0].url || args[0]);
    if (url.includes('/gradio_api/') && response.body) {
      const reader = response.clone().body.getReader(), text = new TextDecoder();
      (async () => { for (;;) { const {done, value} = await reader.read(); if (done) break;
                                 window.__received.push(text.decode(value)); } })();
    }
    return response;
  };
  const Source = window.EventSource;
  window.EventSource = function (url, options) {
    const source = new Source(url, options);
    source.addEventListener('message', e => window.__received.push(e.data));
    return source;
  };
  window.EventSource.prototype = Source.prototype;
}"""


def open_tab(browser, url: str, width: int, height: int, model: str):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(f"({RECORD})()")
    page = context.new_page()
    page.goto(url)
    wait_for_grid(page)
    page.locator("#model input").click()
    page.get_by_role("option", name=model, exact=True).click()
    info = page.locator("#model-info")  # "NAME: what it is": "classic" alone also stands in mlp-uncond's text
    wait_until(lambda: info.inner_text().startswith(f"{model}:"), 30, f"{model} as the model",
               describe=lambda: info.inner_text())
    tab = page.get_by_role("tab", name="Inside the GAN")
    if tab.is_visible():
        tab.click()
    else:  # a phone: the tabs that do not fit are in the "..." menu
        page.locator(".overflow-menu button").first.click()
        page.locator(".overflow-dropdown").get_by_text("Inside the GAN").click()
    page.wait_for_selector("#inside-pad canvas", timeout=30_000)
    return context, page


def draw_a_seven(page) -> None:
    """A 7 in two strokes of small mouse moves, as a hand would."""
    page.locator("#inside-pad canvas").scroll_into_view_if_needed()  # the mouse draws only what is in view
    box = page.locator("#inside-pad canvas").bounding_box()
    side, left, top = box["width"], box["x"], box["y"]
    strokes = [[(0.25, 0.2), (0.75, 0.2)], [(0.75, 0.2), (0.45, 0.85)]]
    for stroke in strokes:
        (x0, y0), (x1, y1) = stroke
        page.mouse.move(left + side * x0, top + side * y0)
        page.mouse.down()
        for i in range(1, 21):
            t = i / 20
            page.mouse.move(left + side * (x0 + (x1 - x0) * t), top + side * (y0 + (y1 - y0) * t))
        page.mouse.up()


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_draw_a_digit_see_what_d_sees_and_find_it(browser, app_server):
    _, url = app_server
    context, page = open_tab(browser, url, 1280, 900, "mlp-cond")
    # the page's model change shows a conditional model's pickers (the unconditional default hides them)
    wait_until(lambda: page.locator("#inside-d-digit").is_visible(), 30, "D's digit picker of a conditional model")
    statuses = []  # every response the page got: the drawing must not cost uploads (limited per client)
    page.on("response", lambda response: statuses.append((response.status, response.url)))
    draw_a_seven(page)
    page.locator("#inside-look").click()
    verdict = wait_for_text(page, "#inside-verdict", r"D's raw score", timeout=60)
    assert "your picture" in verdict and re.search(r"D says (real|fake)", verdict)
    wait_until(lambda: page.locator("#inside-heatmap img").count() and page.locator("#inside-seen img").count(), 30,
               "the heatmap and the 28x28 the models saw")
    page.locator("#inside-find").click()
    found = wait_for_text(page, "#inside-find-text", r"Found as a \d: error", timeout=120)
    assert "error" in found and page.locator("#inside-recon img").count() == 1
    assert page.locator("#inside-path img").first.get_attribute("src").endswith(".gif")
    page.locator("#inside-pull").click()
    wait_for_text(page, "#inside-pull-text", r"D's score, step 0 to 12", timeout=60)
    for figure in ("#inside-seen", "#inside-heatmap", "#inside-histogram", "#inside-recon", "#inside-path",
                   "#inside-pull-strip"):  # each label above its picture, not over it
        assert label_clear_of_image(page, figure), figure
    shot(page, "6-inside-desktop")

    done = (panel_state(page, "latent") or {"done": 0})["done"]
    page.locator("#inside-open").click()
    wait_until(lambda: page.locator("#latent-start").is_visible(), 30, "the explorer on the found latent")
    state = wait_for_panel(page, "latent", done)
    model, seed, digit, mode, start, *amounts = page.evaluate("window.mnistGan.panels.latent.values")
    assert state["last"]["mode"] == "browser" and len(start) == 100  # the found latent, drawn in the browser
    drawn = app_server[0].service.drawing.latent(model, seed, digit, mode, amounts, z=start)
    assert np.abs(canvas_grey(page, "#latent-panel canvas").astype(int) - drawn).max() <= 1
    assert not [url for status, url in statuses if "/upload" in url or status >= 400], statuses
    context.close()


def test_spot_the_fake_keeps_the_answer_until_answered(browser, app_server):
    _, url = app_server
    context, page = open_tab(browser, url, 1280, 900, "classic")
    wait_for_text(page, "#spot-record", r"^classic[: ]", timeout=30)  # the model change's record of this model
    assert not page.locator("#inside-d-digit").is_visible()  # an unconditional model: no digit picker
    received = page.evaluate("window.__received.length")
    page.locator("#spot-new").click()
    wait_until(lambda: page.locator("#spot-gallery img").count() == 16, 60, "16 images")
    dealt = time.monotonic()
    before = "\n".join(page.evaluate("window.__received")[received:])  # what the round's event sent
    for number in (2, 5, 11):  # click three thumbnails: each toggles its mark
        page.locator("#spot-gallery img").nth(number - 1).click()
    checked = page.locator("#spot-marked input:checked")
    wait_until(lambda: checked.count() == 3, 60, "three marks",  # ticked in the page, no server call
               describe=lambda: f"{checked.count()} checked")
    time.sleep(max(0.0, dealt + spot.MIN_ANSWER_S - time.monotonic()))  # a person looks before answering
    page.locator("#spot-answer").click()
    result = wait_for_text(page, "#spot-result", r"You got \d+ of 16", timeout=60)
    assert "Not added" not in result, result
    fooled, false_alarms = map(int, re.search(r"(\d+) of the 8 fakes fooled you, and you called (\d+) real", result)
                               .groups())
    assert (8 - fooled) + false_alarms == 3, result  # the answer carried the page's three marks
    captions = wait_until(lambda: [c for c in page.locator("#spot-gallery").inner_text().split("\n")
                                   if c.strip().endswith(("fake", "real"))] or None, 30, "the answer's captions")
    fakes = [i + 1 for i, caption in enumerate(captions) if caption.endswith("fake")]
    assert len(captions) == 16 and len(fakes) == 8 and "You got" in result
    # nothing the page received before answering said which were fake
    assert "spot-" not in before and '"1"' in before and '"16"' in before  # the gallery's numbers came
    assert not re.search(r"\bfake\b|\breal\b", before), before[:500]
    assert str(fakes) not in before.replace(" ", "").replace(",", ", ")
    wait_for_text(page, "#spot-record", r"fooled visitors on \d+% of [\d,]+ judgements", timeout=30)
    shot(page, "7-spot-the-fake-desktop")
    context.close()


def test_the_tab_on_a_phone(browser, app_server):
    _, url = app_server
    context, page = open_tab(browser, url, 390, 844, "mlp-cond")
    draw_a_seven(page)
    page.locator("#inside-look").click()
    wait_for_text(page, "#inside-verdict", r"D's raw score", timeout=60)
    page.locator("#inside-find").click()
    wait_for_text(page, "#inside-find-text", r"Found", timeout=120)
    page.locator("#spot-new").click()
    wait_until(lambda: page.locator("#spot-gallery img").count() == 16, 60, "16 images")
    page.locator("#spot-gallery").scroll_into_view_if_needed()
    loaded = "els => els.every(img => img.complete && img.naturalWidth > 0)"
    wait_until(lambda: page.locator("#spot-gallery img").evaluate_all(loaded), 30, "the 16 images loaded")
    assert label_clear_of_image(page, "#inside-heatmap") and label_clear_of_image(page, "#spot-gallery")
    numbers = page.locator("#spot-gallery .caption-label").evaluate_all(
        "els => els.map(e => [e.getBoundingClientRect().top, e.parentElement.querySelector('img')"
        ".getBoundingClientRect().bottom])")
    assert len(numbers) == 16 and all(top >= bottom - 0.5 for top, bottom in numbers)  # under each digit
    shot(page, "8-inside-phone")
    context.close()
