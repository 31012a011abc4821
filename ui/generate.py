"""The Generate tab: a grid of digits from a model and a seed."""

from __future__ import annotations

import html

import gradio as gr

from mnist_gan.serving import permalink
from mnist_gan.serving.drawing import ALL_DIGITS, DIGITS, MAX_IMAGES, MAX_TEMPERATURE

from .common import FAST, LABELLED, PIXELS, PRIVATE, RAW, Page, new_seed, plain_errors


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
        return self.page.files.png(self.page.service.drawing.generate(model, seed, n, digit, temperature))

    @staticmethod
    def link(model: str, seed: float, n: float, digit: str, temperature: float) -> str:
        """A link to the PNG of these settings (GET /png), relative so it works under any root path."""
        href = html.escape(permalink.link(model, seed, n, digit, temperature))
        return f'<a href="{href}" target="_blank" rel="noopener">link to this grid</a> (a plain PNG: embed it anywhere)'

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
                self.permalink = gr.HTML(elem_id="grid-link")
        self.inputs = [self.page.model, self.seed, count, self.digit, temperature]
        linked = {"fn": self.link, "inputs": self.inputs, "outputs": self.permalink, **PRIVATE, **FAST}
        # one public endpoint, fired by every control of the tab; then the link to what it drew
        resample.click(new_seed, None, self.seed, **PRIVATE, **FAST).then(
            self.generate, self.inputs, self.grid, **PRIVATE, **FAST, **RAW).success(**linked)
        gr.on([button.click, self.seed.submit, count.release, self.digit.input, temperature.release], self.generate,
              self.inputs, self.grid, api_name="generate", concurrency_limit=None, **RAW).success(**linked)

    def redraw(self, event):
        """After `event` (a new model): the grid again, and its link."""
        drawn = event.then(self.generate, self.inputs, self.grid, **PRIVATE, **FAST, **RAW)
        drawn.success(self.link, self.inputs, self.permalink, **PRIVATE, **FAST)
        return drawn
