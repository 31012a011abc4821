"""The Generate tab: a grid of digits from a model and a seed, drawn in the visitor's browser (ui/in_browser.py),
or by the server when the browser cannot."""

from __future__ import annotations

import gradio as gr

from mnist_gan.serving.drawing import ALL_DIGITS, DIGITS, MAX_IMAGES, MAX_TEMPERATURE

from .common import FAST, LABELLED, PIXELS, PRIVATE, RAW, Page, grid_file, plain_errors
from .gradio_glue import endpoint
from .in_browser import NEXT_SEED, in_browser, panel, server_draw


class GenerateTab:
    def __init__(self, page: Page):
        self.page = page

    @plain_errors
    def generate(self, model: str, seed: float, n: float, digit: str, temperature: float) -> str:
        """Handwritten digits drawn by a GAN's generator from random latent vectors, as one PNG grid (28x28 digits,
        enlarged with sharp pixels). The same arguments always give the same pixels.

        Args:
            model: the GAN that draws (the models tool lists them); "mlp-uncond" is the default
            seed: a whole number 0-4294967295 choosing the latent vectors; another seed, other digits
            n: how many digits, 1-100
            digit: "all digits" (class-conditional models: a row per digit), or "0"-"9" (conditional models only)
            temperature: 0.1-2, the scale of the latent vectors: low gives typical digits, high more varied ones
        Returns:
            a PNG image of the grid
        """
        drawing, files = self.page.service.drawing, self.page.files
        grid = drawing.grid_request(model, seed, n, digit, temperature)
        return grid_file(drawing, files, grid)

    def build(self) -> None:
        with gr.Row(elem_id="generate-row"):
            with gr.Column(scale=1, min_width=260):
                with gr.Row(equal_height=True):
                    self.seed = gr.Number(value=0, label="Seed", elem_id="seed", scale=2)
                    resample = gr.Button("Resample", elem_id="resample", scale=1)
                count = gr.Slider(1, MAX_IMAGES, value=64, step=1, label="Grid size", elem_id="count")
                self.digit = gr.Dropdown([ALL_DIGITS, *DIGITS], value=ALL_DIGITS, label="Digit", visible=False,
                                         info="all digits: one row per digit", elem_id="gen-digit")
                temperature = gr.Slider(0.1, MAX_TEMPERATURE, value=1.0, step=0.05, label="Temperature (scale of z)",
                                        elem_id="temperature")
                button = gr.Button("Generate", variant="primary", elem_id="generate-btn")
            with gr.Column(scale=2, elem_id="grid-column"):
                self.grid = gr.Image(label="Generated digits", format="png", type="numpy", interactive=False,
                                     buttons=["download"], elem_classes=[PIXELS, LABELLED], elem_id="grid")
                assets = self.page.assets
                self.panel = panel("grid", "Generated digits", assets.runtime, assets.engine, "grid-panel",
                                   link=True)
        model = self.page.model
        self.inputs = [model, self.seed, count, self.digit, temperature]
        # Every control hands its values to the page's generator, which draws the grid in the browser, or asks
        # for the server's (server_draw) and says why; the link to the grid's PNG is made there too.
        self.draw = {"fn": None, "inputs": self.inputs, "js": in_browser("generate")}
        resample.click(None, [model, count, self.digit, temperature], self.seed, js=NEXT_SEED).then(**self.draw)
        gr.on([button.click, self.seed.submit, count.release, self.digit.input, temperature.release], **self.draw)
        server_draw(self.panel)(self.generate, self.inputs, self.grid, trigger_mode="always_last", **PRIVATE,
                                **FAST, **RAW)
        endpoint(self.generate, "generate", self.inputs, self.grid, concurrency_limit=None, **RAW)
