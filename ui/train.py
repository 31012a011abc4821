"""The Train tab: a run in a child process, watched live by every open page; and the train_* endpoints.

Each open page gets the run's changes pushed to it by one stream (an async generator that wakes twice a second,
looks at the run's version, and yields only when something changed, or every HEARTBEAT_S so that a closed page's
stream ends): no per-page polling event, and no thread held per page. A stream holds one of the queue's running
slots for as long as its page is open, so app.py launches with a slot per allowed stream beside Gradio's usual 40
(ui/limits.py caps the streams, per client and in all), and a stream whose page stopped reading ends.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import math
import time

import gradio as gr
import numpy as np
import pandas as pd

from mnist_gan.config import DEFAULT_RECIPE, RECIPES, TRAINING_SETTINGS, field_type, recipe
from mnist_gan.errors import internal_error
from mnist_gan.images import upscale
from mnist_gan.model.architectures import ARCHITECTURES, NUM_CLASSES
from mnist_gan.model.losses import LOSSES
from mnist_gan.serving.drawing import DIGITS
from mnist_gan.training.events import State
from mnist_gan.training.run_state import RunStatus

from .agents import setting_args
from .common import (FAST, LABELLED, PIXELS, PRIVATE, STEP_AXIS, VALUE_AXIS, Page, Scrubbed, on_event_loop,
                     plain_errors, visitor)
from .gradio_glue import endpoint, plot_value, unread_messages, with_signature
from .laboratory import LabPanel
from .limits import STREAM_GROUP

DATA_SOURCES = [("MNIST", "mnist"), ("bundled sample (2,000 images)", "sample")]
FORM_DEFAULTS = recipe(DEFAULT_RECIPE)  # the form starts where train_start does
CHOICES = {"architecture": ARCHITECTURES, "loss": LOSSES}  # settings picked from a registry
ACCURACY = {"d_acc_real": "on real images", "d_acc_fake": "on generated images"}
LOSS_CURVES = {"d_loss": "D loss", "g_loss": "G loss"}
QUALITY = {"cfid": "cFID (lower is better)"}
# Every open Train tab costs CPU that the run it shows competes for (2 cores, measured with 3 headless tabs): each
# update is a Gradio event in the page (~40 ms of the tab's CPU), and each plot redraw rebuilds a Vega chart
# (~60 ms). So a page is sent what changed at most every UPDATE_S, and while a run trains its plots redraw when it
# has grown by a quarter, else at most every 10 s.
UPDATE_S, LOOK_S, HEARTBEAT_S = 2.0, 0.5, 15.0
# A crowd's pages are updated less often, so that all of them together cost the server what this many pages do:
# 40 pages watching a run, each updated every UPDATE_S, took 0.21-0.25 of the server's cores (measured), most of it
# on its event loop, which a class's visitors and the run itself wait for. With 50 pages each is updated every 5 s,
# and its plots redrawn at most every 25 s.
PAGES_AT_FULL_RATE = 20
UNREAD_UPDATES = 3  # updates a page left unread in a row: it is gone (a page that reads drains each one at once)
PLOT_EVERY_S, PLOT_GROWTH = 10.0, 1.25
CURVES_SHARED_S = 2.0
QUALITY_TITLE = "Quality (classifier judge)"


def _parameter(name: str, annotation, default=None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


# train_start's parameters are the training settings (their defaults: the recipe's), in the order the API has
# always had: `data` stays after `loss`, where the first API put it, so calls by position keep working. gradio
# fills in the login (profile) by position, after them.
_SETTINGS = [_parameter(s.name, field_type(s.name) | None) for s in TRAINING_SETTINGS]
DATA_AT = [p.name for p in _SETTINGS].index("loss") + 1
TRAIN_START = inspect.Signature(
    [*_SETTINGS[:DATA_AT], _parameter("data", str, "mnist"), *_SETTINGS[DATA_AT:],
     _parameter("recipe", str, DEFAULT_RECIPE), _parameter("profile", gr.OAuthProfile | None)],
    return_annotation=dict)


class TrainTab:
    def __init__(self, page: Page):
        self.page = page
        self.lab = LabPanel(page)
        self._scrubbed = Scrubbed()  # where each page scrubbed the sample grids to
        self._curves: tuple = ((None,) * 5, None, 0.0)  # what the curves show, the plots' values, when: for every page
        self.watching = 0  # open pages, each with its stream
        service = page.service

        def train_start(*args, **kwargs) -> dict:
            values = TRAIN_START.bind(*args, **kwargs).arguments
            caller, data, name = visitor(values.pop("profile", None)), values.pop("data"), values.pop("recipe")
            return service.training.start(caller, data, name, **values).to_json()

        self.train_start = plain_errors(with_signature(train_start, TRAIN_START, f"""Start training a GAN on
        MNIST digits, in the background on the server (one run at a time; train_status and the run_status resource
        follow it). A stopped or finished run becomes a model named after the run, usable by every drawing tool.

        Settings left out (None) come from `recipe`; no seed draws a random one, recorded in the run's config.

        Args:
{setting_args(p.name for p in _SETTINGS)}
            data: "mnist" (60,000 training digits) or "sample" (the bundled 2,000: quick to try)
            recipe: where settings left out come from: {' or '.join(map(repr, RECIPES))} ('classic': the Keras recipe)
        Returns:
            the run's status as JSON (run, state, step, steps...)
        """))

    @plain_errors
    def train_pause(self, profile: gr.OAuthProfile | None = None) -> dict:
        """Pause the training run; it saves a checkpoint and its weights first. train_resume continues it.

        Returns:
            the run's status as JSON
        """
        return self.page.service.training.pause(visitor(profile)).to_json()

    @plain_errors
    def train_resume(self, profile: gr.OAuthProfile | None = None) -> dict:
        """Resume the paused training run.

        Returns:
            the run's status as JSON
        """
        return self.page.service.training.resume(visitor(profile)).to_json()

    @plain_errors
    def train_stop(self, profile: gr.OAuthProfile | None = None) -> dict:
        """Stop the training run; it saves its weights, and they become a model named after the run.

        Returns:
            the run's status as JSON
        """
        return self.page.service.training.stop(visitor(profile)).to_json()

    @plain_errors
    def train_resume_run(self, run: str | None = None, profile: gr.OAuthProfile | None = None) -> dict:
        """Continue an unfinished training run (killed, failed or stopped) from its latest checkpoint.

        Args:
            run: one of train_status's resumable_runs (its "run"), or None for the newest
        Returns:
            the run's status as JSON
        """
        return self.page.service.training.resume_run(visitor(profile), run or None).to_json()

    @plain_errors
    def train_status(self) -> dict:
        """The training run's status (the run_status resource says it in a few lines of text).

        Returns:
            JSON: run, state (idle, running, paused, stopped, finished, failed...), step, steps, message
            d_acc_real and d_acc_fake: D's accuracy on real and on generated digits (0.5: it cannot tell them apart)
            d_loss, g_loss, images_per_sec, eta_s, history (up to ~300 rows), quality (cFID rows), resumable_runs
        """
        return self.page.service.training.status().to_json()

    @plain_errors
    def train_gif(self) -> str:
        """The training run's sample grids (fixed noise) as an animated GIF, first to latest: watch G learn.

        Returns:
            an animated GIF
        """
        return self.page.files.gif(self.page.service.training.frames(), frame_ms=150, scale=2, bounce=False)

    # --- what every open tab shows, polled ------------------------------------------------------------------------

    async def stream(self, request: gr.Request):
        """What every open page shows, pushed to it when the run changes (see the module's docstring)."""
        view, seen, sent, unread = {}, None, 0.0, 0
        session = request.session_hash if request else None
        self.watching += 1
        try:
            while True:
                version = (self.page.service.training.version, tuple(self.page.service.library.names()))
                now = time.monotonic()
                if (version != seen and now - sent >= UPDATE_S * self.slower()) or now - sent >= HEARTBEAT_S:
                    backlog = unread_messages(self.demo, session)
                    unread = unread + 1 if backlog else 0
                    if backlog is None or unread > UNREAD_UPDATES:
                        return  # nobody reads this page any more: free its slot, and pile up no more updates
                    seen, sent = version, now
                    try:
                        outputs = self.tick(view, session)
                    except Exception as e:  # a bug must not end the page's updates: log it, try again later
                        internal_error(e)
                        await asyncio.sleep(HEARTBEAT_S)
                        continue
                    view = outputs[-1]
                    yield outputs
                await asyncio.sleep(LOOK_S)
        finally:
            self.watching -= 1
            self._scrubbed.pop(session, None)
            self.lab.scrubbed.pop(session, None)

    def slower(self) -> float:
        """How many times less often than at full rate each page is updated now (1 up to PAGES_AT_FULL_RATE)."""
        return max(1.0, self.watching / PAGES_AT_FULL_RATE)

    def tick(self, view: dict, session: str | None):
        """Everything the Train tab shows to a page (session), sent only where it changed since its last update."""
        service = self.page.service
        s = service.training.status()
        view = dict(view or {})
        out = {}
        resumable = tuple((r["run"], r["step"]) for r in s.resumable_runs)
        status_key = (s.run, s.state, s.step, s.message, len(s.incidents), s.saved_step, resumable, len(s.edits))
        out["status"] = status_html(s) if view.get("status") != status_key else gr.skip()
        history_key = (s.run, s.step, len(s.history))
        replot = view.get("history") != history_key and (
            s.state != State.RUNNING or s.step >= PLOT_GROWTH * view.get("plotted_step", 0)
            or time.monotonic() - view.get("plotted_at", 0.0) >= PLOT_EVERY_S * self.slower())
        # The plots are drawn by events of their own (curves, quality_plots) when these keys change: a plot that a
        # stream skips loses its data types in the page (gradio 6.31), which then fails when its tab is shown again
        out["curves"] = history_key if replot else gr.skip()
        if replot:
            view.update(history=history_key, plotted_at=time.monotonic(), plotted_step=s.step)
        # no evaluation yet: nothing to draw, and no event (a page starts with those plots hidden)
        quality_key = (s.run, len(s.quality)) if s.quality else None
        out["quality"] = quality_key if view.get("quality") != quality_key else gr.skip()
        count = len(s.sample_steps)
        grid_key = (s.run, count)
        if view.get("grids") != grid_key:
            out["grid"], out["scrub"] = self.grid_outputs(s, self._scrubbed.stays_at(session, s.run, view.get("grids")))
        else:
            out["grid"] = out["scrub"] = gr.skip()
        # The buttons and model pickers go through `controls`: a skipped output still costs gradio ~1 ms to process
        names = service.library.names()
        controls = (s.state.value, s.run in names, resumable, tuple(names))
        view.update(status=status_key, quality=quality_key, grids=grid_key)
        lab = self.lab.tick(view, s, names, session)
        return (out["status"], out["curves"], out["quality"], out["grid"], out["scrub"], *lab, controls, view)

    def grid_outputs(self, s: RunStatus, index: int | None) -> tuple:
        """The sample grid at `index` (None: the latest) and its slider."""
        count = len(s.sample_steps)
        index = count - 1 if index is None else index
        shown_grid = self.grid_file(s, index)
        return (shown_grid[1] if shown_grid else None,
                gr.update(maximum=max(1, count - 1), value=index if count else 0, interactive=count > 1,
                          label=f"Sample grid at step {shown_grid[0]:,}" if shown_grid else "Sample grids"))

    def shown_again(self, atlas_index, request: gr.Request):
        """The sample grid and the latent atlas, sent again each time the tab is shown. A page's stream sends each
        once, and gradio 6.31 sometimes loses a picture sent to a tab that was never shown (its slider arrives): a
        page opened after a run ended then showed an empty grid until the run changed (4 of 18 tries on a busy
        machine, at 390 px, the tab opened 3-4 s after the page; none of 16 since). The atlas's panel asks again
        when it is opened (ui/laboratory.py). Each stays where this page left it: the grid's position is kept here,
        the atlas's is its slider's (and kept in the panel as the run goes on)."""
        s = self.page.service.training.status()
        page = request.session_hash if request is not None else None
        index = self._scrubbed.stays_at(page, s.run, (s.run, len(s.sample_steps)))
        return (*self.grid_outputs(s, index), *self.lab.atlas_outputs(s, atlas_index))

    def curves(self):
        """The run's D accuracies and losses, each live edit marked, drawn for all the pages that show them: each
        open page asks every PLOT_EVERY_S or so, and each drawing is ~6 ms of pandas and of the plots' own
        conversion (profiled). While the run trains, a page may get curves drawn up to CURVES_SHARED_S ago for
        another page (it shows them for PLOT_EVERY_S); once it stops, its last points."""
        s, now = self.page.service.training.status(), time.monotonic()
        key = (s.run, s.state, len(s.edits), len(s.history), tuple(s.history[-1].items()) if s.history else ())
        shown, values, drawn_at = self._curves
        recent = s.state == State.RUNNING and shown[:3] == key[:3] and now - drawn_at < CURVES_SHARED_S
        if shown != key and not recent:
            values = tuple(plot_value(plot, marked(long_rows(s.history, series), s.edits))
                           for plot, series in self._curve_plots)
            self._curves = key, values, now
        return values

    def quality_plots(self):
        """The run's cFID so far, and the classes of its latest evaluation."""
        s = self.page.service.training.status()
        evaluated = s.quality[-1]["step"] if s.quality else None
        return (gr.update(value=long_rows(s.quality, QUALITY), visible=bool(s.quality), title=quality_title(s.quality)),
                gr.update(value=histogram(s.class_histogram), visible=s.class_histogram is not None,
                          title=f"Classes the judge sees at step {evaluated:,}" if evaluated else None))

    def controls(self):
        """The run's buttons and the model pickers, sent when the tick's `controls` key changes."""
        s, names = self.page.service.training.status(), self.page.service.library.names()
        runs = [r["run"] for r in s.resumable_runs]
        return (gr.update(interactive=not s.state.active), gr.update(interactive=s.state.can_pause),
                gr.update(interactive=s.state.can_resume), gr.update(interactive=s.state.active),
                gr.update(interactive=s.state.done and s.run in names), gr.update(visible=bool(runs)),
                gr.update(choices=runs, value=runs[0] if runs else None, visible=len(runs) > 1),
                *self.lab.controls(s), *[gr.update(choices=names)] * len(self.pickers))

    def show_grid(self, index: float, request: gr.Request):
        s = self.page.service.training.status()
        if request is not None:
            self._scrubbed.record(request.session_hash, s.run, index)
        shown_grid = self.grid_file(s, int(index))
        if shown_grid is None:
            return gr.skip(), gr.skip()
        return shown_grid[1], gr.update(label=f"Sample grid at step {shown_grid[0]:,}")

    def grid_file(self, s: RunStatus, index: int) -> tuple[int, str] | None:
        """(step, PNG file) of the run's index-th sample grid as the tab shows it (negative counts from the end),
        made once for all the pages that show it: each open page's stream asks for each new grid, and a class's 50
        decodes and encodes of one image held the event loop (profiled)."""
        if not s.sample_steps:
            return None
        index = max(-len(s.sample_steps), min(index, len(s.sample_steps) - 1))
        step = s.sample_steps[index]

        def make() -> tuple[str, ...]:
            shown = self.page.service.training.grid(index)
            return (self.page.files.png(enlarged(shown[1])),) if shown else ()

        made = self.page.files.remembered(("sample grid", s.run, step), make)
        return (step, made[0]) if made else None

    def form_of_run(self):
        """After a reload, the form shows the settings of the run on screen."""
        config = self.page.service.training.status().config
        if config is None:
            return [gr.skip()] * len(TRAINING_SETTINGS)
        return [config[s.name] for s in TRAINING_SETTINGS]

    def use_run(self):
        service = self.page.service
        s = service.training.status()
        if s.run not in service.library.names():
            raise gr.Error("no finished run with saved weights yet: start a run, then stop it or let it finish")
        gr.Info(f"{s.run} is now the model for Generate and Latent explorer.")
        return gr.update(choices=service.library.names(), value=s.run)

    # --- layout -----------------------------------------------------------------------------------------------------

    def build(self) -> None:
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                self.form = {}
                for row in form_rows(TRAINING_SETTINGS):
                    with gr.Row():
                        for setting in row:
                            self.form[setting.name] = setting_widget(setting)
                data = gr.Radio(DATA_SOURCES, label="Training data", elem_id="data",
                                value=self.page.service.training.default_data())
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    pause = gr.Button("Pause", elem_id="pause", interactive=False)
                    resume = gr.Button("Resume", elem_id="resume", interactive=False)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", interactive=False)
                use = gr.Button("Use this model", elem_id="use", interactive=False)
                with gr.Row(equal_height=True):
                    resumable = gr.Dropdown([], label="Unfinished run", elem_id="resumable", visible=False, scale=2)
                    resume_run = gr.Button("Resume run", variant="primary", elem_id="resume-run", visible=False,
                                           scale=1)
            with gr.Column(scale=2, elem_id="train-watch"):
                status = gr.HTML(elem_id="status")
                with gr.Row():
                    acc_plot = gr.LinePlot(x="step", y="value", color="series", y_lim=[0, 1], height=240,
                                           title="Discriminator accuracy", y_title="accuracy",
                                           color_title="D accuracy", elem_id="acc-plot", **STEP_AXIS)
                    loss_plot = gr.LinePlot(x="step", y="value", color="series", height=240, title="Losses",
                                            y_title="loss", color_title="loss", elem_id="loss-plot", **STEP_AXIS,
                                            **VALUE_AXIS)
                self._curve_plots = ((acc_plot, ACCURACY), (loss_plot, LOSS_CURVES))
                with gr.Row():
                    quality_plot = gr.LinePlot(x="step", y="value", color="series", height=220, visible=False,
                                               title=QUALITY_TITLE, y_title="cFID", color_title="judge",
                                               elem_id="quality-plot", **STEP_AXIS, **VALUE_AXIS)
                    hist_plot = gr.BarPlot(x="digit", y="share", height=220, y_lim=[0, 1], visible=False,
                                           title="Class histogram (latest evaluation)", elem_id="hist-plot")
        with gr.Row():
            with gr.Column(scale=2):
                train_grid = gr.Image(label="Sample grid (fixed noise)", format="png", type="numpy",
                                      interactive=False, buttons=["download"],
                                      elem_classes=[PIXELS, LABELLED], elem_id="train-grid", height=420)
            with gr.Column(scale=1):
                scrub = gr.Slider(0, 1, value=0, step=1, label="Sample grids", interactive=False, elem_id="scrub",
                                  info="drag back through the run's grids")
                export = gr.Button("Export the run as a GIF", elem_id="export")
                run_gif = gr.File(label="Run GIF", elem_id="run-gif")
        self.lab.build(self.form)
        self._grid, self._scrub = train_grid, scrub
        view = gr.State({})
        self._controls = gr.State()  # what the buttons and pickers show: their update runs only when it changes
        self.buttons = [start, pause, resume, stop, use, resume_run, resumable, *self.lab.step_buttons,
                        self.lab.apply, self.lab.fork_button]

        curves_key, quality_key = gr.State(), gr.State()  # what the plots show: they are drawn when it changes
        curves_key.change(self.curves, None, [acc_plot, loss_plot], **PRIVATE, **FAST)
        quality_key.change(self.quality_plots, None, [quality_plot, hist_plot], **PRIVATE, **FAST)
        tick_outputs = [status, curves_key, quality_key, train_grid, scrub, *self.lab.outputs,
                        self._controls, view]
        last_action = gr.State()  # the page shows the run through the tick, not the control's return value
        settings = [self.form[s.name] for s in TRAINING_SETTINGS]
        start.click(self.train_start, [*settings[:DATA_AT], data, *settings[DATA_AT:], gr.State(DEFAULT_RECIPE)],
                    last_action, **PRIVATE).then(self.tick, [gr.State({}), scrub], tick_outputs, **PRIVATE, **FAST)
        for button, action, inputs in ((pause, self.train_pause, None), (resume, self.train_resume, None),
                                       (stop, self.train_stop, None), (resume_run, self.train_resume_run, resumable)):
            button.click(action, inputs, last_action, **PRIVATE).then(
                self.tick, [gr.State({}), scrub], tick_outputs, **PRIVATE, **FAST)
        for name in ("train_start", "train_pause", "train_resume", "train_stop", "train_resume_run", "train_status"):
            endpoint(getattr(self, name), name, concurrency_limit=None)
        # one stream per page, no concurrency limit: it holds no thread while it waits (a queue slot, though)
        self.page_load = [(self.stream, None, tick_outputs, {"concurrency_id": STREAM_GROUP}),
                          (on_event_loop(self.form_of_run), None, settings, {})]
        scrub.input(self.show_grid, scrub, [train_grid, scrub], trigger_mode="always_last", **PRIVATE, **FAST)
        export.click(self.train_gif, None, run_gif, api_name="train_gif", concurrency_id="lab-heavy",
                     concurrency_limit=2)  # up to 100 grids into a GIF: seconds of CPU
        self.use = use

    def wire(self, demo: gr.Blocks, pickers: list, tab: gr.Tab) -> None:
        """Connect what lives outside the tab: page loads, the tab itself, and the model pickers the run's weights
        join."""
        self.pickers, self.demo = pickers, demo
        tab.select(on_event_loop(self.shown_again), self.lab.atlas_scrub,
                   [self._grid, self._scrub, self.lab.atlas_image, self.lab.atlas_scrub], **PRIVATE, **FAST)
        for fn, inputs, outputs, options in self.page_load:
            demo.load(fn, inputs, outputs, **PRIVATE, **FAST, **options)
        self._controls.change(on_event_loop(self.controls), None, [*self.buttons, *pickers], **PRIVATE, **FAST)
        self.use.click(self.use_run, None, self.page.model, **PRIVATE)


def enlarged(grid: np.ndarray) -> np.ndarray:
    """A run's sample grid as the tab shows it: twice the size, the strokes are what matters."""
    return upscale(grid, 2)


def form_rows(settings) -> list[list]:
    """The form's rows: each setting picked from a registry on a row of its own (its choices and their
    descriptions need the width), then the numbers and switches two to a row, in the settings' order."""
    picked = [s for s in settings if s.name in CHOICES]
    rest = [s for s in settings if s.name not in CHOICES]
    return [[s] for s in picked] + [rest[i:i + 2] for i in range(0, len(rest), 2)]


def setting_widget(setting):
    """The Train form's widget for one training setting, starting at the recipe's value."""
    kind, value = field_type(setting.name), getattr(FORM_DEFAULTS, setting.name)
    elem_id = "train-" + setting.name.replace("_", "-")  # ids are the page's: Generate has a "seed" too
    if setting.name == "seed":
        return gr.Number(None, label=setting.label, precision=0, elem_id=elem_id, placeholder="random",
                         info="empty: a random seed, recorded in the run")
    if setting.name in CHOICES:
        registry = CHOICES[setting.name]
        info = setting.info or "; ".join(f"{k}: {v.description}" for k, v in registry.items())
        return gr.Radio(sorted(registry), value=value, label=setting.label, info=info, elem_id=elem_id)
    if kind is bool:
        return gr.Checkbox(value, label=setting.label, info=setting.info or None, elem_id=elem_id)
    return gr.Number(value, label=setting.label, info=setting.info or None, precision=0 if kind is int else None,
                     elem_id=elem_id)


# --- formatting ---------------------------------------------------------------------------------------------------

def duration(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min" if seconds >= 3600 else \
        f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def number(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def resume_offer(runs: list[dict]) -> str:
    if not runs:
        return ""
    newest, more = runs[0], len(runs) - 1
    others = f" ({more} more unfinished run{'s' if more > 1 else ''}: pick one below)" if more else ""
    return (f"<span class='resume-offer'>The run <code>{html.escape(newest['run'])}</code> ended before it "
            f"finished; its checkpoint of step {newest['step']:,} of {newest['steps']:,} is kept: press "
            f"<b>Resume run</b> to continue it{others}.</span>")


def status_html(s: RunStatus) -> str:
    offer = resume_offer(s.resumable_runs)
    if s.run is None:
        return ("<div class='run-status'><b>No run yet.</b> Choose the settings and press <b>Start</b>."
                + (f"<br>{offer}" if offer else "") + "</div>")
    percent = 100 * s.progress
    lines = [
        f"<b class='state-{s.state}'>{s.state}</b> · <code>{html.escape(s.run)}</code> · {html.escape(s.data)}",
        f"<progress value='{percent:.1f}' max='100'></progress> step <b>{s.step:,}</b> of {s.steps:,} "
        f"({percent:.0f}%) · ETA {duration(s.eta_s) if s.state.active else '-'} · "
        f"{number(s.images_per_sec, ',.0f')} images/s",
        f"D accuracy on real <b>{number(s.d_acc_real, '.2f')}</b>, on generated <b>{number(s.d_acc_fake, '.2f')}</b>"
        f" · D loss {number(s.d_loss, '.3f')}, G loss {number(s.g_loss, '.3f')}",
    ]
    if s.origin:
        lines.append(f"Forked from <code>{html.escape(s.origin['run'])}</code> at step {s.origin['step']:,}"
                     + (f" with {html.escape(_changes(s.origin.get('changes', {})))}" if s.origin.get("changes")
                        else ", nothing changed"))
    lines += [f"Step {e['step']:,}: {html.escape(_changes(e['changes'], e['before']))}" for e in s.edits[-3:]]
    notes = [s.message] + [f"Divergence at step {i['step']:,}: {i['reason']}; {i['action']}." for i in s.incidents[-3:]]
    lines += [f"<span class='message'>{html.escape(note)}</span>" for note in notes if note]
    if s.state.done and s.saved_step is not None:
        lines.append(f"Weights saved at step {s.saved_step:,}: press <b>Use this model</b>, or push it from the "
                     "Hub tab.")
    if offer:
        lines.append(offer)
    return "<div class='run-status'>" + "<br>".join(lines) + "</div>"


def _changes(changes: dict, before: dict | None = None) -> str:
    """Settings changes in words: "lr_d 0.0002 → 0.0001"."""
    def value(v) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k} {value(before[k])} → {value(v)}" if before and k in before else f"{k} {value(v)}"
                     for k, v in changes.items())


def long_rows(rows: list[dict], series: dict[str, str]) -> pd.DataFrame | None:
    """Long-format rows (step, series, value) for gr.LinePlot; missing and non-finite values left out.

    None instead of an empty frame: a plot first drawn from an empty frame never draws its lines (gradio 6.31).
    """
    points = [(r["step"], label, r[key]) for r in rows for key, label in series.items()
              if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if not points:
        return None
    return pd.DataFrame(points, columns=["step", "series", "value"]).astype({"step": "int64", "value": "float64"})


def marked(frame: pd.DataFrame | None, edits: list[dict]) -> pd.DataFrame | None:
    """The curves with each live edit drawn as a vertical line across them, labelled with what changed."""
    if frame is None or not edits:
        return frame
    low, high = float(frame["value"].min()), float(frame["value"].max())
    marks = [(e["step"], f"step {e['step']:,}: {_changes(e['changes'], e['before'])}", value)
             for e in edits for value in (low, high)]
    return pd.concat([frame, pd.DataFrame(marks, columns=frame.columns)], ignore_index=True)


def quality_title(rows: list[dict]) -> str:
    """The quality plot's title, with the latest cFID: a line of one point draws nothing, the title still says it."""
    latest = rows[-1] if rows else {}
    cfid = latest.get("cfid")
    if not (isinstance(cfid, (int, float)) and math.isfinite(cfid)):
        return QUALITY_TITLE
    return f"Quality: cFID {cfid:.3g} at step {latest['step']:,}"  # short: a phone's plot is ~290 px wide


def histogram(shares) -> pd.DataFrame:
    return pd.DataFrame({"digit": DIGITS, "share": np.asarray(shares if shares else [0.0] * NUM_CLASSES, float)})
