"""The Latent explorer tab: one latent vector moved by sliders along directions found from the model, and
spherical interpolation between two seeds; both drawn in the visitor's browser (ui/in_browser.py), or by the
server when the browser cannot."""

from __future__ import annotations

import gradio as gr

from mnist_gan.inside.directions import MAX_DIRECTIONS
from mnist_gan.serving.drawing import DIGIT_SCALE, DIGITS, MAX_FRAMES, SLIDER_RANGE, Digits

from .common import FAST, LABELLED, PIXELS, PRIVATE, RAW, Page, new_seed, on_event_loop, plain_errors
from .gradio_glue import endpoint, list_parameter
from .in_browser import in_browser, panel, server_draw

MODES = [("meaningful directions", "directions"), ("raw dimensions", "raw")]  # (what the page shows, the value)


class ExplorerTab:
    def __init__(self, page: Page):
        self.page = page

    @plain_errors
    def latent_directions(self, model: str, mode: str = "directions") -> list[dict]:
        """The latent explorer's sliders for a model: directions in its latent space, each found from the model
        itself (stroke thickness, slant, width, height..., or "more like a k" for digit k), for the latent tool.

        Args:
            model: the GAN (the models tool lists them)
            mode: "directions" (the found directions) or "raw" (the latent vector's own first 16 coordinates)
        Returns:
            a JSON list of sliders: index, label (what it moves), r2 (how linear the move is, 0-1)
        """
        return self.page.service.drawing.latent_directions(model, mode)

    @plain_errors
    def latent(self, model: str, seed: float, digit: str, mode: str, amounts: list) -> str:
        """One digit drawn from a seed's latent vector moved along the latent explorer's sliders: how a GAN's
        latent space encodes style (see latent_directions for what each slider moves).

        Args:
            model: the GAN (the models tool lists them)
            seed: a whole number 0-4294967295 choosing the starting latent vector
            digit: "0"-"9", the digit a class-conditional model draws (unconditional models ignore it)
            mode: "directions" (the found directions) or "raw" (the latent vector's own coordinates)
            amounts: how far to move along each slider, in latent units (about -4 to 4), slider 0 first; at most 16
        Returns:
            a PNG image of the digit (280x280)
        """
        return self._digit(self.page.service.drawing.latent_request(model, seed, digit, mode, amounts))

    @plain_errors
    def interpolate(self, model: str, seed_a: float, seed_b: float, frames: float, digit: str) -> tuple[str, str]:
        """The path between two seeds' digits: their latent vectors interpolated spherically, each step drawn.

        Args:
            model: the GAN (the models tool lists them)
            seed_a: the first digit's seed, a whole number 0-4294967295
            seed_b: the last digit's seed
            frames: how many steps, 2-32
            digit: "0"-"9", the digit a class-conditional model draws (unconditional models ignore it)
        Returns:
            a PNG strip of the frames, then an animated GIF of them
        """
        drawing, files = self.page.service.drawing, self.page.files
        digits = drawing.interpolation_request(model, seed_a, seed_b, frames, digit)

        def make():
            strip, images = drawing.draw_interpolation(digits)
            return files.png(strip), files.gif(images)
        return files.remembered(("interpolation", digits.key()), make)

    @plain_errors
    def sliders_for(self, model: str, mode: str) -> list:
        """The sliders' labels for a model (all back at 0); the unused ones hidden."""
        basis = self.page.service.drawing.basis(model, mode)
        return [gr.update(label=d.label, value=0, visible=True) if i < len(basis) else
                gr.update(value=0, visible=False) for i, d in enumerate(basis + [None] * (MAX_DIRECTIONS - len(basis)))]

    @plain_errors
    def draw(self, model, seed, digit, mode, start, *amounts):
        """The page's digit: the sliders over the seed's latent, or over `start` (a latent found elsewhere)."""
        return self._digit(self.page.service.drawing.latent_request(model, seed, digit, mode, list(amounts), start))

    def _digit(self, digits: Digits) -> str:
        """The explorer's digit as a file: made once per latent while it is kept."""
        drawing, files = self.page.service.drawing, self.page.files
        return files.remembered(("digit", digits.key()), lambda: (files.png(drawing.draw_digit(digits)),))[0]

    def build(self) -> None:
        gr.Markdown("One latent vector, moved by sliders. Each direction was found from the model itself: an image "
                    "measurement (stroke thickness, slant, width...) or the shipped classifier's score for a digit, "
                    "regressed on z over 4,000 samples.")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                with gr.Row(equal_height=True):
                    seed = gr.Number(value=7, label="Seed", elem_id="latent-seed", scale=2)
                    randomize = gr.Button("Randomize", elem_id="randomize", scale=1)
                    reset = gr.Button("Reset", elem_id="reset", scale=1)
                self.mode = gr.Radio(MODES, value="directions", label="Sliders", elem_id="mode")
                self.digit = gr.Dropdown(DIGITS, value="0", label="Digit", visible=False, elem_id="latent-digit")
                self.start_note = gr.Markdown(visible=False, elem_id="latent-start")
                self.image = gr.Image(label="Digit", format="png", type="numpy", interactive=False,
                                      buttons=["download"],
                                      elem_classes=[PIXELS, LABELLED], elem_id="latent", height=300)
                assets = self.page.assets
                self.panel = panel("latent", "Digit", assets.runtime, assets.engine, "latent-panel",
                                   scale=DIGIT_SCALE, file="digit.png")
            with gr.Column(scale=2):
                self.sliders = []
                with gr.Row():
                    for half in range(2):
                        with gr.Column(min_width=200):
                            for i in range(half * MAX_DIRECTIONS // 2, (half + 1) * MAX_DIRECTIONS // 2):
                                self.sliders.append(gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0, step=0.1,
                                                              label=f"direction {i}", elem_id=f"slider-{i}"))
        gr.Markdown("### Interpolate between two seeds")
        with gr.Row(equal_height=True):
            seed_a = gr.Number(value=0, label="From seed", elem_id="seed-a")
            seed_b = gr.Number(value=1, label="To seed", elem_id="seed-b")
            frames = gr.Slider(2, MAX_FRAMES, value=12, step=1, label="Frames", elem_id="frames")
            button = gr.Button("Interpolate", variant="primary", elem_id="interpolate-btn")
        with gr.Row(elem_id="strip-row"):
            self.strip = gr.Image(label="Frames (spherical interpolation)", format="png", type="numpy",
                                  interactive=False, buttons=["download"],
                                  elem_classes=[PIXELS, LABELLED], elem_id="strip", scale=3)
            self.gif = gr.Image(label="Animated GIF", type="filepath", interactive=False, buttons=["download"],
                                elem_classes=[PIXELS, LABELLED], elem_id="gif", scale=1)
        self.strip_panel = panel("strip", "Frames (spherical interpolation)", assets.runtime, assets.engine,
                                 "strip-panel", file="frames.png", moving=True)
        amounts = list_parameter("number")  # the API's slider values (the UI sends the sliders themselves)
        self.seed = seed
        # a latent to start from instead of the seed's ("Open in Latent explorer"): in the page, so that the
        # browser can draw it too
        self.start = gr.JSON(None, visible="hidden", elem_id="latent-start-z")

        model = self.page.model
        self.inputs = [model, seed, self.digit, self.mode, self.start, *self.sliders]
        self.interpolate_inputs = [model, seed_a, seed_b, frames, self.digit]
        # Every control hands its values to the page's generator: it draws in the browser, or asks the server
        # (server_draw) and says why. Only the newest of a drag's moves is drawn (the others are skipped).
        self.explore = {"fn": None, "inputs": self.inputs, "js": in_browser("explore")}
        self.interpolating = {"fn": None, "inputs": self.interpolate_inputs, "js": in_browser("interpolate")}
        gr.on([s.input for s in self.sliders] + [self.digit.input], **self.explore)
        # the UI sends its sliders, the API a list (same function underneath); RAW also spares gradio a hop to a
        # worker thread per input (20) on every slider move
        server_draw(self.panel)(self.draw, self.inputs, self.image, trigger_mode="always_last", **PRIVATE, **FAST,
                                **RAW)
        endpoint(self.latent, "latent", [model, seed, self.digit, self.mode, amounts], self.image,
                 concurrency_limit=None, **RAW)  # gradio's default of 1 queued every caller behind one
        self.leave = {"fn": on_event_loop(lambda: (None, gr.update(visible=False))),  # a new seed: its own latent
                      "outputs": [self.start, self.start_note], **PRIVATE, **FAST}
        endpoint(self.latent_directions, "latent_directions", concurrency_limit=None)
        on_sliders = {"fn": self.sliders_for, "inputs": [model, self.mode], "outputs": self.sliders, **PRIVATE, **FAST}
        seed.submit(**self.leave).then(**self.explore)
        reset.click(**on_sliders).then(**self.explore)
        randomize.click(new_seed, None, seed, **PRIVATE, **FAST).then(**self.leave).then(**on_sliders).then(
            **self.explore)
        self.mode.input(**on_sliders).then(**self.explore)
        button.click(**self.interpolating)
        server_draw(self.strip_panel)(self.interpolate, self.interpolate_inputs, [self.strip, self.gif],
                                      trigger_mode="always_last", **PRIVATE, **FAST, **RAW)
        endpoint(self.interpolate, "interpolate", self.interpolate_inputs, [self.strip, self.gif],
                 concurrency_limit=None, **RAW)

    def redraw(self, event):
        """After `event` (a new model, whose sliders it set): the digit again, from the seed's own latent."""
        return event.then(**self.leave).then(**self.explore)
