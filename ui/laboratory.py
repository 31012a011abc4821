"""The Train tab's laboratory: steps by hand while paused, live edits while training, the latent atlas, collapse
alarms, and forking and comparing runs. Layout and wiring over `Service.lab`; the numbers come from the package."""

from __future__ import annotations

import html
import inspect
import math

import gradio as gr
import pandas as pd

from mnist_gan.config import LIVE_SETTINGS, TRAINING_SETTINGS, field_type
from mnist_gan.training.laboratory import MAX_COMPARED
from mnist_gan.training.manual_steps import KINDS
from mnist_gan.training.run_state import RunStatus

from .agents import setting_args
from .common import (
    FAST,
    LABELLED,
    PIXELS,
    PRIVATE,
    RAW,
    STEP_AXIS,
    VALUE_AXIS,
    Page,
    Scrubbed,
    on_event_loop,
    plain_errors,
    visitor,
)
from .gradio_glue import endpoint, with_signature

STEP_BUTTONS = {"d": "D step", "g": "G step", "iteration": "One iteration", "10": "10 iterations"}
HEAVY = {"concurrency_id": "lab-heavy", "concurrency_limit": 2}  # seconds of CPU each (an atlas GIF: ~5 s)
LIVE_LABELS = {"lr_g": "G learning rate", "lr_d": "D learning rate", "d_steps": "D steps per G step",
               "ema_decay": "EMA decay"}


def _parameter(name: str, annotation, default=None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


# train_fork takes a run, a step and every training setting (None: the parent's), like train_start
FORK = inspect.Signature([_parameter("run", str, ""), _parameter("step", int | None),
                          *[_parameter(s.name, field_type(s.name) | None) for s in TRAINING_SETTINGS],
                          _parameter("profile", gr.OAuthProfile | None)], return_annotation=dict)


class LabPanel:
    def __init__(self, page: Page):
        self.page = page
        self.scrubbed = Scrubbed()  # where each page scrubbed the atlases to
        lab = page.service.lab

        def train_fork(*args, **kwargs) -> dict:
            values = FORK.bind(*args, **kwargs).arguments
            caller, run, step = visitor(values.pop("profile", None)), values.pop("run"), values.pop("step", None)
            return lab.fork(caller, run, step, values).to_json()

        self.train_fork = plain_errors(with_signature(train_fork, FORK, f"""Start a new training run from a run's
        checkpoint with some settings changed (one run at a time). It continues the parent's exact state (weights,
        optimizers, random generators, data order), so the changes are the only difference: an experiment.

        Args:
            run: the parent run's name (runs_list lists them)
            step: the checkpoint to start from, one of the run's fork_steps in runs_list (None: its latest)
{setting_args(s.name for s in TRAINING_SETTINGS)}
        Returns:
            the new run's status as JSON; settings left out (None) are the parent's
        """))

    # --- the public API ---------------------------------------------------------------------------------------------

    @plain_errors
    def train_step_once(self, kind: str = "iteration", profile: gr.OAuthProfile | None = None) -> dict:
        """Take one training step by hand in the paused run, a real step of it; train_inspection shows what it did.

        Args:
            kind: "d" (one discriminator step), "g" (one generator step), "iteration" (both) or "10" (ten iterations)
        Returns:
            the run's status as JSON
        """
        return self.page.service.lab.take(visitor(profile), kind).to_json()

    @plain_errors
    def train_set(self, lr_g: float | None = None, lr_d: float | None = None, d_steps: int | None = None,
                  ema_decay: float | None = None, profile: gr.OAuthProfile | None = None) -> dict:
        """Change the training run's settings while it trains (None: unchanged), from its next compiled call on;
        the change is recorded in the run's history and checkpoint.

        Args:
            lr_g: the generator's Adam learning rate, in (0, 1]
            lr_d: the discriminator's Adam learning rate, in (0, 1]
            d_steps: discriminator steps per generator step, 1-10
            ema_decay: in (0, 1), only for a run that has an EMA of G
        Returns:
            the run's status as JSON
        """
        changes = {"lr_g": lr_g, "lr_d": lr_d, "d_steps": d_steps, "ema_decay": ema_decay}
        return self.page.service.lab.edit(visitor(profile), changes).to_json()

    @plain_errors
    def train_inspection(self) -> tuple[dict, str | None]:
        """What the newest step taken by hand (train_step_once) did, measured on the very batch it used.

        Returns:
            JSON: D's scores and accuracies before and after, the losses, each layer's gradient norm
            an image, a row each: the real batch, the generated batch, G's digits before, after, and their change
        """
        summary, picture = self.page.service.lab.inspection()
        return summary, self.page.files.png(picture) if picture is not None else None

    @plain_errors
    def runs_list(self) -> list[dict]:
        """Every training run with a checkpoint, newest first.

        Returns:
            a JSON list: run, step, steps, fork_steps (the checkpoints train_fork can start from), origin (its parent)
        """
        return self.page.service.lab.runs()

    @plain_errors
    def runs_compare(self, runs: list[str], step: float | None = None) -> tuple[dict, str]:
        """2 to 4 training runs side by side: their curves on one step axis, and their fixed-noise sample grids.

        Args:
            runs: 2 to 4 run names (runs_list lists them)
            step: the step whose grids to show (each run's nearest at or before it; None: each run's latest)
        Returns:
            JSON: each run's step, history (D accuracies, losses), quality (cFID) and edits; then a PNG of their grids
        """
        rows, picture = self.page.service.lab.compare(runs, step)
        return {"runs": rows}, self.page.files.png(picture)

    @plain_errors
    def atlas(self, run: str | None = None, step: float | None = None) -> tuple[dict, str]:
        """A training run's latent atlas: a fixed 2-D slice of latent space tiled with the digits G draws there,
        each tinted by D's verdict (green: real, red: generated) and marked with the digit the classifier reads.

        Args:
            run: a run name (runs_list lists them; None: the current run)
            step: one of the steps the atlas was drawn at (None: the latest)
        Returns:
            JSON: the step shown; then a PNG of the atlas
        """
        shown_step, picture = self.page.service.lab.atlas(run or None, step)
        return {"step": shown_step}, self.page.files.png(picture)

    @plain_errors
    def atlas_gif(self, run: str | None = None) -> str:
        """A training run's latent atlases as an animated GIF, first to latest: the latent space taking shape.

        Args:
            run: a run name (runs_list lists them; None: the current run)
        Returns:
            an animated GIF
        """
        return self.page.files.gif(self.page.service.lab.atlas_frames(run or None), frame_ms=250, scale=1,
                                   bounce=False)

    # --- what the page shows, updated with the run ------------------------------------------------------------------

    def tick(self, view: dict, s: RunStatus, names: list[str], page: str | None = None) -> list:
        """The panel's outputs for this status, sent only where they changed (view: this page's last keys)."""
        out = [gr.skip()] * len(self.outputs)
        at = {component: i for i, component in enumerate(self.outputs)}
        key = (s.run, len(s.inspections))
        if view.get("inspection") != key and s.inspections:
            summary, picture = self.page.service.lab.inspection()
            out[at[self.evidence]] = self.page.files.png(picture) if picture is not None else None
            out[at[self.summary]] = inspection_markdown(summary)
        key_atlas = (s.run, len(s.atlas_steps))
        if view.get("atlas") != key_atlas:
            stay = self.scrubbed.stays_at(page, s.run, view.get("atlas"))
            out[at[self.atlas_image]], out[at[self.atlas_scrub]] = self.atlas_outputs(s, stay)
        key_alarm = (s.run, len(s.alarms))
        if view.get("alarm") != key_alarm:
            alarm = s.alarms[-1] if s.alarms else None
            out[at[self.alarm]] = gr.update(value=alarm_markdown(alarm) if alarm else "", visible=bool(alarm))
            out[at[self.remedy]] = gr.update(visible=bool(alarm and alarm.get("fork_step") is not None),
                                             value=remedy_label(alarm) if alarm else "")
        key_live = (s.run, tuple((s.config or {}).get(n) for n in LIVE_SETTINGS))
        if view.get("live") != key_live and s.config:
            for name in LIVE_SETTINGS:
                out[at[self.live[name]]] = s.config[name]
        key_runs = (s.run, s.state.value, s.saved_step if s.state.done else None)
        if view.get("runs") != key_runs:
            runs = self.page.service.lab.runs()
            choices = [r["run"] for r in runs]
            out[at[self.fork_run]] = gr.update(choices=choices, value=choices[0] if choices else None)
            # and its steps now: the run picker's value may not change (the same run, stopped), so no event would
            out[at[self.fork_step]] = self.fork_steps(choices[0] if choices else None, runs)
            out[at[self.compared]] = gr.update(choices=choices)
        view.update(inspection=key, atlas=key_atlas, alarm=key_alarm, live=key_live, runs=key_runs)
        return out

    def atlas_outputs(self, s: RunStatus, index: int | None = None) -> tuple:
        """The latent atlas at `index` (None: the latest, and the slider moved there) and its slider; none yet: no
        picture when following, and the slider as it is."""
        count = len(s.atlas_steps)
        if not count:
            return None if index is None else gr.skip(), gr.skip()
        step, picture = self.atlas_file(s, count - 1 if index is None else int(index))
        moved = {"value": count - 1} if index is None else {}
        return picture, gr.update(maximum=max(1, count - 1), interactive=count > 1, label=f"Atlas at step {step:,}",
                                  **moved)

    def atlas_at(self, index) -> tuple:
        """The atlas a page's slider is at: its panel opened, its tab shown again."""
        return self.atlas_outputs(self.page.service.training.status(), index)

    def scrub_atlas(self, index, request: gr.Request):
        """The atlas a page scrubbed to, where it stays as the run makes more (the page follows the latest again
        once it scrubs to the end)."""
        s = self.page.service.training.status()
        if request is not None:
            self.scrubbed.record(request.session_hash, s.run, index)
        return self.atlas_outputs(s, index)

    def controls(self, s: RunStatus) -> list:
        """The panel's buttons for the run's state."""
        paused = s.state == "paused"
        return [*[gr.update(interactive=paused)] * len(self.step_buttons),
                gr.update(interactive=s.state.active and s.state != "stopping"),
                gr.update(interactive=not s.state.active)]

    def fork_steps(self, run: str | None, runs: list[dict] | None = None):
        """The picker of the steps `run` can be forked at, its latest chosen."""
        found = {r["run"]: r for r in (self.page.service.lab.runs() if runs is None else runs)}
        steps = found.get(run, {}).get("fork_steps", [])
        return gr.update(choices=[(f"{s:,}", s) for s in steps], value=steps[-1] if steps else None)

    # --- layout -----------------------------------------------------------------------------------------------------

    def build(self, form: dict) -> None:
        """The panel, under the Train tab's form and curves; `form`: the Train form (a fork takes its settings)."""
        with gr.Accordion("Laboratory: step by hand, change settings live", open=True, elem_id="lab"):
            gr.Markdown("Pause the run, then take one step at a time and see what it did on its own batch. "
                        "While it trains, change its learning rates, D steps per G step and EMA decay: the change "
                        "applies at its next compiled call and is marked in its history.")
            with gr.Row():
                self.step_buttons = [gr.Button(label, elem_id=f"step-{kind}", interactive=False, size="sm")
                                     for kind, label in STEP_BUTTONS.items()]
            with gr.Row():
                self.evidence = gr.Image(label="What the step did (rows: real, generated; G before, after, change)",
                                         format="png", type="filepath", interactive=False,
                                         elem_classes=[PIXELS, LABELLED], elem_id="evidence",
                                         scale=2)
                self.summary = gr.Markdown(elem_id="inspection")
            with gr.Row(equal_height=True):
                self.live = {name: gr.Number(label=LIVE_LABELS[name], elem_id=f"live-{name.replace('_', '-')}",
                                             precision=0 if field_type(name) is int else None, min_width=120)
                             for name in LIVE_SETTINGS}
                self.apply = gr.Button("Apply live", elem_id="apply-live", interactive=False)
            self.alarm = gr.Markdown(visible=False, elem_id="alarm")
            self.remedy = gr.Button(visible=False, variant="stop", elem_id="remedy")
        with gr.Accordion("Latent atlas", open=False, elem_id="atlas-panel") as atlas_panel:
            gr.Markdown("A fixed 2-D slice of the latent space, tiled with the generator's digits at each sample step: "
                        "green tiles look real to D, red ones generated; the corner digit is the judge's reading.")
            with gr.Row():
                self.atlas_image = gr.Image(label="Latent atlas", format="png", type="filepath", interactive=False,
                                            elem_classes=[LABELLED], elem_id="atlas", scale=2)
                with gr.Column(scale=1):
                    self.atlas_scrub = gr.Slider(0, 1, value=0, step=1, label="Atlas", interactive=False,
                                                 elem_id="atlas-scrub")
                    export = gr.Button("Export the atlas as a GIF", elem_id="atlas-export")
                    atlas_file = gr.File(label="Atlas GIF", elem_id="atlas-gif")
        with gr.Accordion("Fork and compare", open=False, elem_id="fork-panel"):
            with gr.Row(equal_height=True):
                self.fork_run = gr.Dropdown([], label="Run", elem_id="fork-run", scale=2)
                self.fork_step = fork_step = gr.Dropdown([], label="From step", elem_id="fork-step", scale=1)
                self.fork_button = gr.Button("Fork with the form's settings", elem_id="fork", variant="primary",
                                             interactive=True, scale=1)
            with gr.Row(equal_height=True):
                self.compared = gr.Dropdown([], label=f"Runs to compare (2 to {MAX_COMPARED})", multiselect=True,
                                            max_choices=MAX_COMPARED, elem_id="compare-runs", scale=3)
                compare_step = gr.Number(None, label="At step (empty: latest)", precision=0, elem_id="compare-step",
                                         scale=1)
                compare = gr.Button("Compare", elem_id="compare", scale=1)
            compared_grids = gr.Image(label="Fixed-noise grids, side by side", format="png", type="filepath",
                                      interactive=False, elem_classes=[PIXELS, LABELLED], elem_id="compare-grids")
            with gr.Row():
                compared_acc = gr.LinePlot(x="step", y="value", color="series", y_lim=[0, 1], height=240,
                                           title="D accuracy", y_title="accuracy", elem_id="compare-acc", **STEP_AXIS)
                compared_loss = gr.LinePlot(x="step", y="value", color="series", height=240, title="D loss",
                                            y_title="loss", elem_id="compare-loss", **STEP_AXIS, **VALUE_AXIS)
                compared_cfid = gr.LinePlot(x="step", y="value", color="series", height=240, title="cFID",
                                            y_title="cFID", elem_id="compare-cfid", **STEP_AXIS, **VALUE_AXIS)
        self.outputs = [self.evidence, self.summary, self.atlas_image, self.atlas_scrub, self.alarm, self.remedy,
                        *self.live.values(), self.fork_run, self.fork_step, self.compared]

        last = gr.State()
        for button, kind in zip(self.step_buttons, KINDS):
            button.click(self.train_step_once, gr.State(kind), last, **PRIVATE)
        self.apply.click(self.train_set, list(self.live.values()), last, **PRIVATE)
        settings = [form[s.name] for s in TRAINING_SETTINGS]
        # a pick, not a change: the tick that sets the run picker sets its steps too (one event less per page load)
        self.fork_run.input(self.fork_steps, self.fork_run, fork_step, **PRIVATE, **FAST)
        self.fork_button.click(self.train_fork, [self.fork_run, fork_step, *settings], last, **PRIVATE)
        self.remedy.click(self._fork_remedy, None, last, **PRIVATE)
        compare.click(self._compare_ui, [self.compared, compare_step],
                      [compared_grids, compared_acc, compared_loss, compared_cfid], **PRIVATE, **HEAVY)
        self.atlas_scrub.input(self.scrub_atlas, self.atlas_scrub, [self.atlas_image, self.atlas_scrub],
                               trigger_mode="always_last", **PRIVATE, **FAST, **RAW)
        # opened, the panel asks for the atlas its slider is at: gradio 6.31 sometimes loses a picture sent to a
        # closed accordion (its slider's update arrives), as to a tab never shown (ui/train.py's shown_again)
        atlas_panel.expand(on_event_loop(self.atlas_at), self.atlas_scrub, [self.atlas_image, self.atlas_scrub],
                           **PRIVATE, **FAST)
        export.click(self.atlas_gif, gr.State(None), atlas_file, **PRIVATE, **HEAVY)
        for name in ("train_step_once", "train_set", "train_fork", "runs_list"):
            endpoint(getattr(self, name), name, concurrency_limit=None)
        # the ones that answer with pictures: files a remote client downloads (gr.api would send a server path)
        report, picture, gif = gr.JSON(visible=False), gr.Image(type="filepath", format="png", visible=False), \
            gr.File(visible=False)
        run, step, runs = gr.Textbox(visible=False), gr.Number(visible=False), gr.JSON(visible=False)
        endpoint(self.train_inspection, "train_inspection", [], [report, picture], concurrency_limit=None)
        endpoint(self.atlas, "atlas", [run, step], [report, picture], concurrency_limit=None, **RAW)
        endpoint(self.runs_compare, "runs_compare", [runs, step], [report, picture], **HEAVY, **RAW)
        endpoint(self.atlas_gif, "atlas_gif", [run], gif, **HEAVY, **RAW)  # comparing and animating: CPU

    # --- private handlers -----------------------------------------------------------------------------------------

    def _fork_remedy(self, profile: gr.OAuthProfile | None = None):
        s = self.page.service.training.status()
        alarm = s.alarms[-1] if s.alarms else None
        if not alarm or alarm.get("fork_step") is None:
            raise gr.Error("no alarm with a checkpoint to fork from")
        return self.train_fork(s.run, alarm["fork_step"], **alarm["remedy"], profile=profile)

    def atlas_file(self, s: RunStatus, index: int) -> tuple[int, str]:
        """(step, PNG file) of the current run's index-th latent atlas (s has one), made once for all the pages
        that show it (rendering an atlas, ~25 ms with its labels, for each open page held the event loop)."""
        step = s.atlas_steps[max(0, min(index, len(s.atlas_steps) - 1))]
        made = self.page.files.remembered(("atlas", s.run, step),
                                          lambda: (self.page.files.png(self.page.service.lab.atlas(None, step)[1]),))
        return step, made[0]

    def _compare_ui(self, runs, step):
        summary, picture = self.runs_compare(runs, step)
        acc, loss, cfid = [], [], []
        for row in summary["runs"]:
            for h in row["history"]:
                for key, label in (("d_acc_real", "real"), ("d_acc_fake", "generated")):
                    if _finite(h.get(key)):
                        acc.append((h["step"], f"{row['run']} · {label}", h[key]))
                if _finite(h.get("d_loss")):
                    loss.append((h["step"], row["run"], h["d_loss"]))
            cfid += [(q["step"], row["run"], q["cfid"]) for q in row["quality"] if _finite(q.get("cfid"))]
        frames = [pd.DataFrame(points, columns=["step", "series", "value"]) if points else None
                  for points in (acc, loss, cfid)]
        return picture, *frames


def inspection_markdown(item: dict) -> str:
    """A step by hand's numbers as a short table."""
    summary, lines = item.get("summary", {}), [f"**{STEP_BUTTONS.get(item.get('kind'), item.get('kind'))}**, "
                                               f"now at step {item.get('step', 0):,}"]
    if "refused" in summary:
        return lines[0] + f": not taken ({html.escape(summary['refused'])})"
    d, g = summary.get("d"), summary.get("g")
    rows = ["| | before | after |", "| --- | --- | --- |"]
    if d:
        rows += [f"| D's score, real | {d['score_real'][0]:.3f} | {d['score_real'][1]:.3f} |",
                 f"| D's score, generated | {d['score_fake'][0]:.3f} | {d['score_fake'][1]:.3f} |",
                 f"| D's accuracy, real | {d['accuracy_real'][0]:.0%} | {d['accuracy_real'][1]:.0%} |",
                 f"| D's accuracy, generated | {d['accuracy_fake'][0]:.0%} | {d['accuracy_fake'][1]:.0%} |"]
    if g:
        rows.append(f"| D's score of G's images | {g['score'][0]:.3f} | {g['score'][1]:.3f} |")
    if "score_before" in summary:
        rows.append(f"| D's score of the fixed digits | {summary['score_before']:.3f} | {summary['score_after']:.3f} |")
    losses = []
    if d:
        losses.append(f"D loss: real {d['loss_real']:.3f} + generated {d['loss_fake']:.3f}")
    if g:
        losses.append(f"G loss {g['loss']:.3f}")
    norms = [f"{name}: " + ", ".join(f"{layer} {value:.2g}" for layer, value in part["gradient_norms"].items())
             for name, part in (("D's gradient norms", d), ("G's", g)) if part]
    return "\n".join([*lines, "", *rows, "", " · ".join(losses), "", *norms])


def alarm_markdown(alarm: dict) -> str:
    return f"⚠️ **{html.escape(alarm['message'])}** (step {alarm['step']:,})."


def remedy_label(alarm: dict) -> str:
    changes = ", ".join(f"{k} {v:g}" for k, v in alarm.get("remedy", {}).items())
    return f"Fork from step {alarm['fork_step']:,} with {changes}" if alarm.get("fork_step") is not None else ""


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
