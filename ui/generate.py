"""The Generate tab: a grid of digits from a model and a seed."""

from __future__ import annotations

import gradio as gr

from mnist_gan.service import ALL_DIGITS, DIGITS, MAX_IMAGES, MAX_TEMPERATURE

from .common import FAST, PRIVATE, RAW, Page, new_seed, shown


class GenerateTab:
    def __init__(self, page: Page):
        self.page = page

    @shown
    def generate(self, model: str, seed: float, n: float, digit: str, temperature: float) -> str:
        """A PNG grid of n digits (1-100) drawn by `model` from `seed`; same arguments, same pixels.
        digit: "all digits", or 0-9 for class-conditional models (then one row per digit)."""
        return self.page.files.png(self.page.service.generate(model, seed, n, digit, temperature))

    def build(self) -> None:
        with gr.Row():
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
            self.grid = gr.Image(label="Generated digits", format="png", type="numpy", interactive=False,
                                 buttons=["download"], elem_id="grid", scale=2)
        self.inputs = [self.page.model, self.seed, count, self.digit, temperature]
        # one public endpoint, fired by every control of the tab
        resample.click(new_seed, None, self.seed, **PRIVATE, **FAST).then(
            self.generate, self.inputs, self.grid, **PRIVATE, **FAST, **RAW)
        gr.on([button.click, self.seed.submit, count.release, self.digit.input, temperature.release], self.generate,
              self.inputs, self.grid, api_name="generate", concurrency_limit=None, **RAW)

    def redraw(self, event):
        """After `event` (a new model): the grid again."""
        return event.then(self.generate, self.inputs, self.grid, **PRIVATE, **FAST, **RAW)
