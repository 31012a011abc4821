"""mnist-gan: watch a GAN learn to write digits, and play with what it learned. `python app.py`

The UI only: layout, validation, and package errors turned into plain gr.Error messages. The work happens in
the mnist_gan package (library: the models; directions: the latent explorer's sliders; worker: the training
run in a child process; hub: push and pull).
"""

import os

# Before gradio, TensorFlow or huggingface_hub are imported: nothing phones home, and logs stay quiet.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# After every event gradio rebuilds a pandas summary of up to 10,000 past events for a monitoring page this app
# does not enable: a third of the CPU a request cost (profiled), growing as events pile up. Once per 1,000 instead.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

import atexit  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import html  # noqa: E402
import math  # noqa: E402
import secrets  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mnist_gan import access, cache, hub, metrics  # noqa: E402
from mnist_gan.config import GANConfig, shown  # noqa: E402
from mnist_gan.losses import LOSSES as ADVERSARIAL_LOSSES  # noqa: E402
from mnist_gan.data import DATA_ENV, TINY_DATA, DataSourceError  # noqa: E402
from mnist_gan.directions import MAX_DIRECTIONS, find_directions, move, raw_directions  # noqa: E402
from mnist_gan.files import atomic_write  # noqa: E402
from mnist_gan.library import Library  # noqa: E402
from mnist_gan.models import ARCHITECTURES, NUM_CLASSES  # noqa: E402
from mnist_gan.sampling import (MAX_SEED, check_seed, encode_gif, encode_png, grid_shape, interpolation,  # noqa: E402
                                latents, make_grid, to_uint8, upscale)
from mnist_gan.worker import ACTIVE, DONE, RunFolderError, TrainingWorker, WorkerBusy, cadence  # noqa: E402
from mnist_gan.weights import RECIPE_MODEL, shipped_models  # noqa: E402

ROOT = Path(__file__).resolve().parent
RUNS_DIR = Path(os.environ.get("MNIST_GAN_RUNS") or ROOT / "runs")
HUB_CACHE = os.environ.get("MNIST_GAN_HUB_CACHE") or None  # None: huggingface_hub's own cache
ON_SPACES = os.environ.get("SYSTEM") == "spaces"
MAX_IMAGES, MAX_FRAMES, MAX_STEPS = 100, 32, 200_000
RECOMMENDED = GANConfig.load(shipped_models()[RECIPE_MODEL])  # the Train form's starting point
ALL_DIGITS = "all digits"
DIGITS = [str(k) for k in range(NUM_CLASSES)]
MODES = [("meaningful directions", "directions"), ("raw dimensions", "raw")]  # (what the page shows, the value)
DATA_SOURCES = [("MNIST", "mnist"), ("bundled sample (2,000 images)", "sample")]
SLIDER_RANGE = 4.0  # latent units: a direction's coordinate is N(0, 1), so +-4 reaches far past typical digits

library = Library()


def _user_errors(fn):
    """Package errors become a plain message on the page (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, WorkerBusy, RunFolderError, access.AccessDenied, hub.HubError, DataSourceError,
                FileNotFoundError) as e:
            raise gr.Error(str(e), print_exception=False) from None

    return wrapper


def _numbers_only(*components) -> None:
    """API callers can send anything: a non-number for a Number or Slider gets a plain message (gradio's own
    check fails on it with a TypeError, which reaches the caller as a bare "Error")."""
    for component in components:
        def preprocess(payload, component=component, original=component.preprocess):
            if isinstance(payload, bool) or not isinstance(payload, (int, float)):
                raise gr.Error(f"{component.label.lower()} must be a number, got {type(payload).__name__}",
                               print_exception=False)
            return original(payload)

        component.preprocess = preprocess


def _count(value, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] from a form or an API call, or a ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    return int(value)


def _digit_labels(generator, digit, n: int) -> tuple[np.ndarray | None, int, int]:
    """(labels, rows, cols) of a grid of n: conditional models draw one digit, or a row per digit."""
    digit = ALL_DIGITS if digit in (None, "") else str(digit)
    if digit != ALL_DIGITS and digit not in DIGITS:
        raise ValueError(f"digit must be one of 0-9 or {ALL_DIGITS!r}, got {shown(digit)}")
    if not generator.config.conditional:
        if digit != ALL_DIGITS:
            raise ValueError(f"{generator.name} is unconditional: it cannot be asked for a digit (use {ALL_DIGITS!r})")
        return None, *grid_shape(n)
    if digit == ALL_DIGITS:
        cols = math.ceil(n / NUM_CLASSES)
        return np.repeat(np.arange(NUM_CLASSES), cols), NUM_CLASSES, cols
    return np.full(n, int(digit)), *grid_shape(n)


def _one_digit(generator, digit, n: int) -> np.ndarray | None:
    """Labels for n latents of one digit; unconditional models ignore the digit (their picker is hidden)."""
    if not generator.config.conditional:
        return None
    if str(digit) not in DIGITS:
        raise ValueError(f"{generator.name} is class-conditional: choose a digit 0-9, got {shown(digit)}")
    return np.full(n, int(digit))


def _display_scale(cols: int) -> int:
    """Upscaling so a grid is about 600 px wide: big enough to see strokes, small enough to download."""
    return max(2, min(8, 600 // (cols * 30)))


def _cache_file(data: bytes, suffix: str) -> str:
    """A file in gradio's cache (so delete_cache bounds it), named by content: one copy per distinct result."""
    path = Path(demo.GRADIO_CACHE) / "mnist-gan" / (hashlib.sha256(data).hexdigest()[:24] + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.utime(path)  # served again: young again, so age-based cleanup does not delete it on its way out
    else:
        atomic_write(path, data, sync=False)  # a cache: no fsync (milliseconds per request)
    return str(path)


def _png(image: np.ndarray) -> str:
    """An image as a cached PNG file. Encoded here at zlib level 1, not by gradio at level 6: a 64-digit grid
    takes ~2 ms instead of ~9 ms, for ~20% more bytes."""
    return _cache_file(encode_png(image, compress_level=1), ".png")


# --- Generate ---------------------------------------------------------------------------------------------------

@_user_errors
def generate(model: str, seed: float, n: float, digit: str, temperature: float) -> str:
    """A PNG grid of n digits (1-100) drawn by `model` from `seed`; same arguments, same pixels."""
    generator = library.get(model)
    seed, n = check_seed(seed), _count(n, "grid size", 1, MAX_IMAGES)
    if not (isinstance(temperature, (int, float)) and 0 < temperature <= 3):
        raise ValueError(f"temperature must be a number in (0, 3], got {shown(temperature)}")
    labels, rows, cols = _digit_labels(generator, digit, n)
    images = generator.generate(seed, len(labels) if labels is not None else n, labels, float(temperature))
    return _png(make_grid(images, rows, cols, scale=_display_scale(cols)))


# --- Latent explorer --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _digit_scorer():
    return metrics.Classifier.load().digit_scores


@functools.lru_cache(maxsize=32)
def _directions(model: str) -> list:
    """The model's meaningful directions: computed once per model (about a second), then cached."""
    return find_directions(library.get(model), seed=0, digit_scorer=_digit_scorer())


def _basis(model: str, mode: str) -> list:
    if mode not in ("directions", "raw"):
        raise ValueError(f"mode must be 'directions' or 'raw', got {shown(mode)}")
    return _directions(model) if mode == "directions" else raw_directions(library.get(model).config.latent_dim)


@_user_errors
def latent_directions(model: str, mode: str = "directions") -> list[dict]:
    """The sliders of the latent explorer for `model`: what each moves, and how linear it is (R^2)."""
    return [{"index": i, "label": d.label, "r2": None if math.isnan(d.r2) else round(d.r2, 3)}
            for i, d in enumerate(_basis(model, mode))]


@_user_errors
def latent(model: str, seed: float, digit: str, mode: str, amounts: list) -> str:
    """One digit: `seed`'s latent moved amounts[i] units along slider i (see latent_directions).

    digit: the digit a class-conditional model draws (unconditional models ignore it).
    """
    generator = library.get(model)
    basis = _basis(model, mode)
    if not isinstance(amounts, (list, tuple)) or len(amounts) > MAX_DIRECTIONS \
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in amounts):
        raise ValueError(f"amounts must be a list of at most {MAX_DIRECTIONS} numbers, got {shown(amounts)}")
    if not all(math.isfinite(a) for a in amounts):
        raise ValueError("slider values must be finite numbers (no NaN or infinity)")
    if any(abs(a) > 10 * SLIDER_RANGE for a in amounts):
        raise ValueError(f"slider values must lie within +-{10 * SLIDER_RANGE:g}")
    z = move(latents(check_seed(seed), 1, generator.config.latent_dim)[0], basis, amounts)
    image = to_uint8(generator.images(z[None], _one_digit(generator, digit, 1)))
    return _png(make_grid(image, 1, 1, pad=0, scale=10))


@_user_errors
def interpolate(model: str, seed_a: float, seed_b: float, frames: float, digit: str) -> tuple[str, str]:
    """A frame strip (PNG) and a looping GIF of the spherical path from seed_a's latent to seed_b's."""
    generator = library.get(model)
    frames = _count(frames, "frames", 2, MAX_FRAMES)
    z = interpolation(check_seed(seed_a), check_seed(seed_b), frames, generator.config.latent_dim)
    images = to_uint8(generator.images(z, _one_digit(generator, digit, frames)))
    return _png(make_grid(images, 1, frames, scale=2)), _cache_file(encode_gif(images), ".gif")


# --- Train ------------------------------------------------------------------------------------------------------

def _mnist_available() -> bool:
    return bool(os.environ.get(DATA_ENV)) or ON_SPACES or (Path.home() / ".keras" / "datasets" / "mnist.npz").is_file()


EVALUATE = (metrics.CLASSIFIER_DIR / metrics.CLASSIFIER_WEIGHTS).is_file()  # quality curves need the judge


@_user_errors
def train_start(architecture: str = "classic", conditional: bool = False, batch_size: int = 32,
                lr_g: float = 2e-4, lr_d: float = 2e-4, beta_1: float = 0.5, ema_decay: float = 0.999,
                steps: int = 5000, loss: str = "bce", data: str = "mnist", latent_code: int = 0,
                profile: gr.OAuthProfile | None = None) -> dict:
    """Start a training run (one at a time); returns its status. data: "mnist" or "sample" (2,000 images).

    loss: "bce" (the recipe) or "hinge". latent_code: categories of an InfoGAN code for unconditional models
    (10: how the shipped mlp-uncond was trained; 0: none). The Train tab's form starts from RECOMMENDED instead.
    """
    _admin(profile, "Starting a training run")
    if data not in ("mnist", "sample"):
        raise ValueError(f"data must be 'mnist' or 'sample' (the bundled 2,000 images), got {shown(data)}")
    steps = _count(steps, "steps", 1, MAX_STEPS)
    config = GANConfig(architecture=architecture, conditional=conditional, batch_size=batch_size, lr_g=lr_g,
                       lr_d=lr_d, beta_1=beta_1, ema_decay=ema_decay, steps=steps, loss=loss,
                       latent_code=latent_code, seed=secrets.randbelow(2**31),
                       **cadence(steps, EVALUATE))
    if data == "sample":
        return worker.start(config, TINY_DATA, "bundled sample (2,000 MNIST images)")
    path = os.environ.get(DATA_ENV)
    return worker.start(config, path, f"MNIST ({path or 'keras.datasets'})")


def _admin(profile: gr.OAuthProfile | None, action: str) -> None:
    """On a public Space (MNIST_GAN_ADMINS set), only its owners, logged in through Spaces OAuth, may do this."""
    access.require_admin(profile.username if profile else None, action)


@_user_errors
def train_pause(profile: gr.OAuthProfile | None = None) -> dict:
    """Pause the run (it saves a checkpoint and its weights first)."""
    _admin(profile, "Pausing training")
    return worker.pause()


@_user_errors
def train_resume(profile: gr.OAuthProfile | None = None) -> dict:
    """Resume a paused run."""
    _admin(profile, "Resuming training")
    return worker.resume()


@_user_errors
def train_stop(profile: gr.OAuthProfile | None = None) -> dict:
    """Stop the run; it saves its weights, and the model becomes usable under the run's name."""
    _admin(profile, "Stopping training")
    return worker.stop()


@_user_errors
def train_resume_run(profile: gr.OAuthProfile | None = None) -> dict:
    """Continue the last unfinished run (killed, failed or stopped) from its latest checkpoint."""
    _admin(profile, "Resuming a run")
    return worker.resume_run()


def train_status() -> dict:
    """The run's state: step, accuracies, losses, images/s, ETA, history (at most ~300 rows), quality rows, and
    `resumable` (the unfinished run train_resume_run would continue, or null)."""
    return worker.status()


@_user_errors
def train_gif() -> str:
    """An animated GIF of the run's sample grids, from the first to the latest."""
    grids = worker.grids()
    if not grids:
        raise ValueError("no sample grids yet: start a run and wait for its first grid")
    return _cache_file(encode_gif(np.stack(grids), frame_ms=150, scale=2, bounce=False), ".gif")


def _register_run(run) -> None:
    """Called once when a run's process ends: a run that saved weights joins the model picker."""
    if run.saved_step is not None:
        library.add(run.name, run.run_dir, f"trained here ({run.saved_step} steps)")


worker = TrainingWorker(RUNS_DIR, on_done=_register_run)
atexit.register(worker.close)


# --- Hub --------------------------------------------------------------------------------------------------------

def _hub_result(result: hub.HubResult, model: str) -> dict:
    return {"model": model, "repo_id": result.repo_id, "commit_sha": result.commit_sha, "url": result.url,
            "tag": result.tag}


@_user_errors
def push(model: str, repo_id: str, token: str = "", private: bool = False, tag: str = "",
         oauth_token: gr.OAuthToken | None = None, profile: gr.OAuthProfile | None = None) -> dict:
    """Push a model's weights folder to a Hub repo (created if needed); returns the commit sha and its URL."""
    _admin(profile, "Pushing to the Hub")
    folder = library.info(model)["folder"]
    token = hub.resolve_token(token, oauth_token.token if oauth_token else None)
    return _hub_result(hub.push(folder, repo_id, token, private=bool(private), tag=tag or None), model)


@_user_errors
def pull(repo_id: str, revision: str = "main", token: str = "", oauth_token: gr.OAuthToken | None = None) -> dict:
    """Pull a pushed model (checked against its recorded sha256) and add it to the models as repo@sha."""
    token = hub.resolve_token(token, oauth_token.token if oauth_token else None)
    result = hub.pull(repo_id, revision or "main", token=token, cache_dir=HUB_CACHE)
    name = library.add(f"{result.repo_id}@{result.commit_sha[:7]}", result.folder, f"from the Hub ({result.url})")
    return _hub_result(result, name)


def startup_model(lib: Library) -> str:
    """MNIST_GAN_REPO (+ MNIST_GAN_REVISION): pull that model and make it the default; returns a notice."""
    repo = os.environ.get("MNIST_GAN_REPO")
    if not repo:
        return ""
    revision = os.environ.get("MNIST_GAN_REVISION") or "main"
    try:
        result = hub.pull(repo, revision, token=hub.resolve_token(), cache_dir=HUB_CACHE)
        lib.default = lib.add(f"{result.repo_id}@{result.commit_sha[:7]}", result.folder,
                              f"from the Hub ({result.url})")
    except (hub.HubError, ValueError, FileNotFoundError) as e:
        return f"Could not load {repo}@{revision} from the Hub ({e}). Showing the shipped model {lib.default!r}."
    return f"Loaded {lib.default} from the Hub ({result.url})."


def models() -> list[dict]:
    """Every model the app can use (shipped, trained here, pulled), the default first."""
    names = library.names()
    return [library.info(name) for name in sorted(names, key=lambda name: name != library.default)]


NOTICE = startup_model(library)


# --- UI helpers (private) ---------------------------------------------------------------------------------------

def _duration(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min" if seconds >= 3600 else \
        f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _number(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _resume_offer(resumable: dict | None) -> str:
    if not resumable:
        return ""
    return (f"<span class='resume-offer'>The run <code>{html.escape(resumable['run'])}</code> ended before it "
            f"finished; its checkpoint of step {resumable['step']:,} of {resumable['steps']:,} is kept: press "
            "<b>Resume run</b> to continue it.</span>")


def _status_html(s: dict) -> str:
    offer = _resume_offer(s.get("resumable"))
    if s["state"] == "idle":
        return ("<div class='run-status'><b>No run yet.</b> Choose the settings and press <b>Start</b>."
                + (f"<br>{offer}" if offer else "") + "</div>")
    percent = 100 * s["progress"]
    lines = [
        f"<b class='state-{s['state']}'>{s['state']}</b> · <code>{html.escape(s['run'])}</code> · "
        f"{html.escape(s['data'])}",
        f"<progress value='{percent:.1f}' max='100'></progress> step <b>{s['step']:,}</b> of {s['steps']:,} "
        f"({percent:.0f}%) · ETA {_duration(s['eta_s']) if s['state'] in ACTIVE else '-'} · "
        f"{_number(s['images_per_sec'], ',.0f')} images/s",
        f"D accuracy on real <b>{_number(s['d_acc_real'], '.2f')}</b>, on generated "
        f"<b>{_number(s['d_acc_fake'], '.2f')}</b> · D loss {_number(s['d_loss'], '.3f')}, "
        f"G loss {_number(s['g_loss'], '.3f')}",
    ]
    notes = [s["message"]] + [f"Divergence at step {i['step']:,}: {i['reason']}; {i['action']}."
                              for i in s["incidents"][-3:]]
    lines += [f"<span class='message'>{html.escape(note)}</span>" for note in notes if note]
    if s["state"] in DONE and s["saved_step"] is not None:
        lines.append(f"Weights saved at step {s['saved_step']:,}: press <b>Use this model</b>, or push it from the "
                     "Hub tab.")
    if offer:
        lines.append(offer)
    return "<div class='run-status'>" + "<br>".join(lines) + "</div>"


def _long(rows: list[dict], series: dict[str, str]) -> pd.DataFrame | None:
    """Long-format rows (step, series, value) for gr.LinePlot; missing and non-finite values left out.

    None instead of an empty frame: a plot first drawn from an empty frame never draws its lines (gradio 6.31).
    """
    points = [(r["step"], label, r[key]) for r in rows for key, label in series.items()
              if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if not points:
        return None
    return pd.DataFrame(points, columns=["step", "series", "value"]).astype({"step": "int64", "value": "float64"})


ACCURACY = {"d_acc_real": "on real images", "d_acc_fake": "on generated images"}
LOSSES = {"d_loss": "D loss", "g_loss": "G loss"}
QUALITY = {"cfid": "cFID (lower is better)"}


def _histogram(shares) -> pd.DataFrame:
    return pd.DataFrame({"digit": DIGITS, "share": np.asarray(shares if shares else [0.0] * NUM_CLASSES, float)})


def _buttons(s: dict) -> list:
    state = s["state"]
    return [gr.update(interactive=state not in ACTIVE),
            gr.update(interactive=state in ("starting", "running", "resuming")),
            gr.update(interactive=state in ("paused", "pausing")),
            gr.update(interactive=state in ACTIVE),
            gr.update(interactive=state in DONE and s["run"] in library.names()),
            gr.update(visible=s["resumable"] is not None)]


# Every open Train tab costs CPU that the run it shows competes for (2 cores, measured with 3 headless tabs): each
# poll is a whole Gradio event in the page (~40 ms of the tab's CPU), and each plot redraw rebuilds a Vega chart
# (~60 ms). So a tab polls every 2 s, and while a run trains its plots redraw when it has grown by a quarter, else
# at most every 10 s.
TICK_S = 2.0
PLOT_EVERY_S, PLOT_GROWTH = 10.0, 1.25


def _tick(view: dict, scrub: float):
    """Everything the Train tab shows, sent only where it changed since this tab's last tick."""
    s = worker.status()
    view = dict(view or {})
    out = {}
    resumable = (s["resumable"]["run"], s["resumable"]["step"]) if s["resumable"] else None
    status_key = (s["run"], s["state"], s["step"], s["message"], len(s["incidents"]), s["saved_step"], resumable)
    out["status"] = _status_html(s) if view.get("status") != status_key else gr.skip()
    history_key = (s["run"], s["step"], len(s["history"]))
    replot = view.get("history") != history_key and (
        s["state"] != "running" or s["step"] >= PLOT_GROWTH * view.get("plotted_step", 0)
        or time.monotonic() - view.get("plotted_at", 0.0) >= PLOT_EVERY_S)
    out["acc"] = _long(s["history"], ACCURACY) if replot else gr.skip()
    out["loss"] = _long(s["history"], LOSSES) if replot else gr.skip()
    if replot:
        view.update(history=history_key, plotted_at=time.monotonic(), plotted_step=s["step"])
    quality_key = (s["run"], len(s["quality"]))
    changed = view.get("quality") != quality_key
    out["quality"] = gr.update(value=_long(s["quality"], QUALITY), visible=bool(s["quality"])) if changed else gr.skip()
    evaluated = s["quality"][-1]["step"] if s["quality"] else None
    out["hist"] = gr.update(value=_histogram(s["class_histogram"]), visible=s["class_histogram"] is not None,
                            title=f"Classes the judge sees at step {evaluated:,}" if evaluated else None) \
        if changed else gr.skip()
    count = len(s["sample_steps"])
    grid_key = (s["run"], count)
    if view.get("grids") != grid_key:
        following = scrub is None or scrub >= view.get("count", 0) - 1
        index = count - 1 if following else int(scrub)
        shown = worker.grid(index) if count else None
        out["grid"] = _png(_big(shown[1])) if shown else None
        out["scrub"] = gr.update(maximum=max(1, count - 1), value=index if count else 0, interactive=count > 1,
                                 label=f"Sample grid at step {shown[0]:,}" if shown else "Sample grids")
    else:
        out["grid"] = out["scrub"] = gr.skip()
    # The buttons and model pickers go through `controls`: a skipped output still costs gradio ~1 ms to process
    controls = (s["state"], s["run"] in library.names(), resumable, tuple(library.names()))
    view.update(status=status_key, quality=quality_key, grids=grid_key, count=count)
    return (out["status"], out["acc"], out["loss"], out["quality"], out["hist"], out["grid"], out["scrub"],
            controls, view)


def _controls():
    """The run's buttons and the model pickers, sent when the tick's `controls` key changes."""
    s, names = worker.status(), library.names()
    return (*_buttons(s), gr.update(choices=names), gr.update(choices=names))


def _big(grid: np.ndarray) -> np.ndarray:
    return upscale(grid, 2)  # twice the size: the strokes are what matters


def _show_grid(index: float):
    shown = worker.grid(int(index))
    if shown is None:
        return gr.skip(), gr.skip()
    return _png(_big(shown[1])), gr.update(label=f"Sample grid at step {shown[0]:,}")


def _form_of_run():
    """After a reload, the form shows the settings of the run on screen."""
    config = worker.status()["config"]
    if config is None:
        return [gr.skip()] * len(FORM_FIELDS)
    return [config[field] for field in FORM_FIELDS]


FORM_FIELDS = ("architecture", "conditional", "batch_size", "lr_g", "lr_d", "beta_1", "ema_decay", "steps", "loss",
               "latent_code")


def _use_run():
    s = worker.status()
    if s["run"] not in library.names():
        raise gr.Error("no finished run with saved weights yet: start a run, then stop it or let it finish")
    gr.Info(f"{s['run']} is now the model for Generate and Latent explorer.")
    return gr.update(choices=library.names(), value=s["run"])


@_user_errors
def _on_model(model: str, mode: str):
    """A new model: its info, which digit pickers apply, and the explorer's sliders."""
    info = library.info(model)
    steps = f", trained {info['steps']:,} steps" if info["steps"] else ""
    text = f"**{model}**: {info['description']}{steps} · {info['source']}"
    conditional = info["conditional"]
    return (text, gr.update(visible=conditional), gr.update(visible=conditional), *_slider_updates(model, mode))


def _slider_updates(model: str, mode: str) -> list:
    basis = _basis(model, mode)
    return [gr.update(label=d.label, value=0, visible=True) if i < len(basis) else gr.update(value=0, visible=False)
            for i, d in enumerate(basis + [None] * (MAX_DIRECTIONS - len(basis)))]


def _latent_ui(model, seed, digit, mode, *amounts):
    return latent(model, seed, digit, mode, list(amounts))


def _push_ui(model, repo_id, token, private, tag, oauth_token: gr.OAuthToken | None = None,
             profile: gr.OAuthProfile | None = None):
    r = push(model, repo_id, token, private, tag, oauth_token, profile)
    tag = f", tagged `{r['tag']}`" if r["tag"] else ""
    return f"Pushed **{r['model']}** to [{r['repo_id']}]({r['url']}) at commit `{r['commit_sha']}`{tag}.", r


def _pull_ui(repo_id, revision, token, oauth_token: gr.OAuthToken | None = None):
    r = pull(repo_id, revision, token, oauth_token)
    return (f"Pulled [{r['repo_id']}]({r['url']}) at commit `{r['commit_sha']}`: it is now the model **{r['model']}**"
            " for Generate and Latent explorer.", r, gr.update(choices=library.names(), value=r["model"]))


# --- layout -----------------------------------------------------------------------------------------------------

CSS = """
#grid img, #latent img, #strip img, #gif img, #train-grid img { image-rendering: pixelated; }
.run-status { line-height: 1.9; }
.run-status progress { width: 14em; vertical-align: middle; }
.state-running, .state-finished { color: #15803d; }
.state-failed { color: #b91c1c; }
.state-paused, .state-pausing, .state-stopping { color: #b45309; }
"""
LAUNCH = {"css": CSS, "theme": gr.themes.Soft(), "run_history": False, "footer_links": ["api"],
          # Each API call without a session is a new session, and gradio keeps ~0.3 MB per session, 10,000 by
          # default: 3 GB under a scripted crowd (measured). 200 bounds it; an evicted page only re-draws more.
          "state_session_capacity": 200,
          "max_file_size": "1mb"}  # the app takes no uploads, but gradio's upload route is open to anyone
PRIVATE = {"api_visibility": "private", "api_name": "ui"}  # UI-only events: named ui, ui_1...
# No progress shown, and none tracked: on every event the page re-renders the loading status of each component
# any event has ever tracked (a tree walk and a state copy each); untracked, a slider move costs ~30 ms less.
FAST = {"concurrency_limit": None, "show_progress": "hidden", "show_progress_on": []}

with gr.Blocks(title="mnist-gan", delete_cache=(600, 3600)) as demo:
    gr.Markdown("# mnist-gan\nWatch a GAN learn to write digits, and play with what it learned. Every image is "
                "reproducible: same model, seed and settings, same pixels.")
    if NOTICE:
        gr.Markdown(f"**Note:** {NOTICE}", elem_id="notice")
    with gr.Row(equal_height=True):
        model = gr.Dropdown(library.names(), value=library.default, label="Model", allow_custom_value=True,
                            scale=1, elem_id="model")
        model_info = gr.Markdown(elem_id="model-info")

    with gr.Tab("Generate", id="generate"):
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                with gr.Row(equal_height=True):
                    seed = gr.Number(value=0, label="Seed", elem_id="seed", scale=2)
                    resample = gr.Button("Resample", elem_id="resample", scale=1)
                count = gr.Slider(1, MAX_IMAGES, value=64, step=1, label="Grid size", elem_id="count")
                gen_digit = gr.Dropdown([ALL_DIGITS, *DIGITS], value=ALL_DIGITS, label="Digit",
                                        info="all digits: one row per digit", visible=False, elem_id="gen-digit")
                temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature (scale of z)",
                                        elem_id="temperature")
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
            grid = gr.Image(label="Generated digits", format="png", type="numpy", interactive=False,
                            buttons=["download"], elem_id="grid", scale=2)

    with gr.Tab("Latent explorer", id="latent"):
        gr.Markdown("One latent vector, moved by sliders. Each direction was found from the model itself: an image "
                    "measurement (stroke thickness, slant, width...) or the shipped classifier's score for a digit, "
                    "regressed on z over 4,000 samples.")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                with gr.Row(equal_height=True):
                    latent_seed = gr.Number(value=7, label="Seed", elem_id="latent-seed", scale=2)
                    randomize = gr.Button("Randomize", elem_id="randomize", scale=1)
                    reset = gr.Button("Reset", elem_id="reset", scale=1)
                mode = gr.Radio(MODES, value="directions", label="Sliders", elem_id="mode")
                latent_digit = gr.Dropdown(DIGITS, value="0", label="Digit", visible=False, elem_id="latent-digit")
                latent_image = gr.Image(label="Digit", format="png", type="numpy", interactive=False,
                                        buttons=["download"], elem_id="latent", height=300)
            with gr.Column(scale=2):
                sliders = []
                with gr.Row():
                    for half in range(2):
                        with gr.Column(min_width=200):
                            for i in range(half * MAX_DIRECTIONS // 2, (half + 1) * MAX_DIRECTIONS // 2):
                                sliders.append(gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0, step=0.1,
                                                         label=f"direction {i}", elem_id=f"slider-{i}"))
        gr.Markdown("### Interpolate between two seeds")
        with gr.Row(equal_height=True):
            seed_a = gr.Number(value=0, label="From seed", elem_id="seed-a")
            seed_b = gr.Number(value=1, label="To seed", elem_id="seed-b")
            frames = gr.Slider(2, MAX_FRAMES, value=12, step=1, label="Frames", elem_id="frames")
            interpolate_btn = gr.Button("Interpolate", variant="primary", elem_id="interpolate-btn")
        with gr.Row():
            strip = gr.Image(label="Frames (spherical interpolation)", format="png", type="numpy",
                             interactive=False, buttons=["download"], elem_id="strip", scale=3)
            gif = gr.Image(label="Animated GIF", type="filepath", interactive=False, buttons=["download"],
                           elem_id="gif", scale=1)
        amounts = gr.JSON(visible=False)  # the API's slider values (the UI sends the sliders themselves)
        latent_api = gr.Button(visible=False)

    with gr.Tab("Train", id="train"):
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                architecture = gr.Dropdown(list(ARCHITECTURES), value=RECOMMENDED.architecture, label="Architecture",
                                           info="; ".join(f"{k}: {a.description}" for k, a in ARCHITECTURES.items()),
                                           elem_id="architecture")
                with gr.Row():
                    conditional = gr.Checkbox(RECOMMENDED.conditional, elem_id="conditional",
                                              label="Class-conditional (G and D see the digit label)")
                    latent_code = gr.Number(RECOMMENDED.latent_code, label="Latent code (unconditional; 0: off)",
                                            precision=0, elem_id="latent-code",
                                            info="InfoGAN categories, as mlp-uncond: 10")
                with gr.Row():
                    batch_size = gr.Number(RECOMMENDED.batch_size, label="Batch size", precision=0, elem_id="batch-size")
                    steps = gr.Number(20_000, label="Steps", precision=0, elem_id="steps")  # ~10 min on 2 cores
                with gr.Row():
                    lr_g = gr.Number(RECOMMENDED.lr_g, label="G learning rate", elem_id="lr-g")
                    lr_d = gr.Number(RECOMMENDED.lr_d, label="D learning rate", elem_id="lr-d")
                with gr.Row():
                    beta_1 = gr.Number(RECOMMENDED.beta_1, label="Adam beta_1", elem_id="beta-1")
                    ema_decay = gr.Number(RECOMMENDED.ema_decay, label="EMA of G (0: off)", elem_id="ema")
                loss = gr.Radio(sorted(ADVERSARIAL_LOSSES), value=RECOMMENDED.loss, label="Loss", elem_id="loss",
                                info="bce: the classic recipe's binary cross-entropy; hinge: measured better (bench/zoo.md)")
                data_source = gr.Radio(DATA_SOURCES, label="Training data", elem_id="data",
                                       value="mnist" if _mnist_available() else "sample")
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    pause = gr.Button("Pause", elem_id="pause", interactive=False)
                    resume = gr.Button("Resume", elem_id="resume", interactive=False)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", interactive=False)
                use = gr.Button("Use this model", elem_id="use", interactive=False)
                resume_run = gr.Button("Resume run", variant="primary", elem_id="resume-run", visible=False)
            with gr.Column(scale=2):
                status = gr.HTML(elem_id="status")
                with gr.Row():
                    acc_plot = gr.LinePlot(x="step", y="value", color="series", y_lim=[0, 1], height=240,
                                           title="Discriminator accuracy", y_title="accuracy",
                                           color_title="D accuracy", elem_id="acc-plot")
                    loss_plot = gr.LinePlot(x="step", y="value", color="series", height=240, title="Losses",
                                            y_title="loss", color_title="loss", elem_id="loss-plot")
                with gr.Row():
                    quality_plot = gr.LinePlot(x="step", y="value", color="series", height=220, visible=False,
                                               title="Quality (classifier judge)", y_title="cFID",
                                               elem_id="quality-plot")
                    hist_plot = gr.BarPlot(x="digit", y="share", height=220, y_lim=[0, 1], visible=False,
                                           title="Class histogram (latest evaluation)", elem_id="hist-plot")
        with gr.Row():
            with gr.Column(scale=2):
                train_grid = gr.Image(label="Sample grid (fixed noise)", format="png", type="numpy",
                                      interactive=False, buttons=["download"], elem_id="train-grid", height=420)
            with gr.Column(scale=1):
                scrub = gr.Slider(0, 1, value=0, step=1, label="Sample grids", interactive=False, elem_id="scrub",
                                  info="drag back through the run's grids")
                export = gr.Button("Export the run as a GIF", elem_id="export")
                run_gif = gr.File(label="Run GIF", elem_id="run-gif")
        view = gr.State({})
        controls = gr.State()  # what the buttons and model pickers show: their update runs only when it changes
        timer = gr.Timer(TICK_S)

    with gr.Tab("Hub", id="hub"):
        if ON_SPACES:
            gr.LoginButton()
        gr.Markdown("Push a model's weights to a Hugging Face Hub repo, or pull one back. Pulls are checked "
                    "against the sha256 recorded at push time; only weights are loaded, never code.")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### Push")
                push_model = gr.Dropdown(library.names(), value=library.default, label="Model to push",
                                         allow_custom_value=True, elem_id="push-model")
                push_repo = gr.Textbox(label="Repo id", placeholder="your-name/mnist-gan", elem_id="push-repo")
                push_token = gr.Textbox(label="Token (write access)", type="password", elem_id="push-token",
                                        placeholder="hf_... (or log in, or set HF_TOKEN)")
                with gr.Row():
                    push_private = gr.Checkbox(False, label="Private repo", elem_id="push-private")
                    push_tag = gr.Textbox(label="Tag (optional)", placeholder="v1", elem_id="push-tag")
                push_btn = gr.Button("Push", variant="primary", elem_id="push-btn")
            with gr.Column():
                gr.Markdown("### Pull")
                pull_repo = gr.Textbox(label="Repo id", placeholder="owner/mnist-gan", elem_id="pull-repo")
                pull_revision = gr.Textbox("main", label="Revision (branch, tag or commit sha)",
                                           elem_id="pull-revision")
                pull_token = gr.Textbox(label="Token (private repos only)", type="password", elem_id="pull-token")
                pull_btn = gr.Button("Pull", variant="primary", elem_id="pull-btn")
        hub_result = gr.Markdown(elem_id="hub-result")
        hub_json = gr.JSON(label="Details", elem_id="hub-json")

    # Generate: one public endpoint, fired by every control of the tab
    gen_inputs = [model, seed, count, gen_digit, temperature]
    resample.click(lambda: secrets.randbelow(MAX_SEED + 1), None, seed, **PRIVATE, **FAST).then(
        generate, gen_inputs, grid, **PRIVATE, **FAST)
    gr.on([generate_btn.click, seed.submit, count.release, gen_digit.input, temperature.release], generate,
          gen_inputs, grid, api_name="generate", concurrency_limit=None)

    # Latent explorer: the UI sends its sliders; the API sends a list (same function underneath)
    latent_inputs = [model, latent_seed, latent_digit, mode, *sliders]
    # preprocess=False: latent() checks every value itself, and gradio would hop to a worker thread per input (20)
    gr.on([s.input for s in sliders] + [latent_seed.submit, latent_digit.input], _latent_ui, latent_inputs,
          latent_image, trigger_mode="always_last", preprocess=False, **PRIVATE, **FAST)
    latent_api.click(latent, [model, latent_seed, latent_digit, mode, amounts], latent_image, api_name="latent",
                     concurrency_limit=None)  # gradio's default of 1 queued every caller behind one (load test)
    gr.api(latent_directions, api_name="latent_directions", concurrency_limit=None)
    reset.click(lambda m, md: _slider_updates(m, md), [model, mode], sliders, **PRIVATE, **FAST).then(
        _latent_ui, latent_inputs, latent_image, **PRIVATE, **FAST)
    randomize.click(lambda: secrets.randbelow(MAX_SEED + 1), None, latent_seed, **PRIVATE, **FAST).then(
        lambda m, md: _slider_updates(m, md), [model, mode], sliders, **PRIVATE, **FAST).then(
        _latent_ui, latent_inputs, latent_image, **PRIVATE, **FAST)
    mode.input(lambda m, md: _slider_updates(m, md), [model, mode], sliders, **PRIVATE, **FAST).then(
        _latent_ui, latent_inputs, latent_image, **PRIVATE, **FAST)
    interpolate_btn.click(interpolate, [model, seed_a, seed_b, frames, latent_digit], [strip, gif],
                          api_name="interpolate", concurrency_limit=None)

    # A model change (picker, "Use this model", a pull) refreshes both tabs
    model_outputs = [model_info, gen_digit, latent_digit, *sliders]
    for trigger in (model.change, demo.load):
        trigger(_on_model, [model, mode], model_outputs, **PRIVATE, **FAST).then(
            generate, gen_inputs, grid, **PRIVATE, **FAST).then(
            _latent_ui, latent_inputs, latent_image, **PRIVATE, **FAST).then(
            interpolate, [model, seed_a, seed_b, frames, latent_digit], [strip, gif], **PRIVATE, **FAST)
    gr.api(models, api_name="models")

    # Train: the run lives in the worker; every tab polls it
    form = [architecture, conditional, batch_size, lr_g, lr_d, beta_1, ema_decay, steps, loss, data_source,
            latent_code]  # train_start's parameters, in order
    tick_outputs = [status, acc_plot, loss_plot, quality_plot, hist_plot, train_grid, scrub, controls, view]
    controls.change(_controls, None, [start, pause, resume, stop, use, resume_run, model, push_model],
                    **PRIVATE, **FAST)
    last_action = gr.State()  # the UI shows the run through the tick, not the control's return value
    start.click(train_start, form, last_action, **PRIVATE).then(
        _tick, [gr.State({}), scrub], tick_outputs, **PRIVATE, **FAST)
    for button, action in ((pause, train_pause), (resume, train_resume), (stop, train_stop),
                           (resume_run, train_resume_run)):
        button.click(action, None, last_action, **PRIVATE).then(
            _tick, [gr.State({}), scrub], tick_outputs, **PRIVATE, **FAST)
    for fn in (train_start, train_pause, train_resume, train_stop, train_resume_run, train_status):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
    timer.tick(_tick, [view, scrub], tick_outputs, **PRIVATE, **FAST)
    demo.load(_tick, [view, scrub], tick_outputs, **PRIVATE, **FAST)
    demo.load(_form_of_run, None, [c for c in form if c is not data_source], **PRIVATE, **FAST)
    scrub.input(_show_grid, scrub, [train_grid, scrub], trigger_mode="always_last", **PRIVATE, **FAST)
    export.click(train_gif, None, run_gif, api_name="train_gif")
    use.click(_use_run, None, model, **PRIVATE)

    # Hub
    push_btn.click(_push_ui, [push_model, push_repo, push_token, push_private, push_tag], [hub_result, hub_json],
                   **PRIVATE)
    pull_btn.click(_pull_ui, [pull_repo, pull_revision, pull_token], [hub_result, hub_json, model], **PRIVATE)
    gr.api(push, api_name="push")
    gr.api(pull, api_name="pull")
    _numbers_only(seed, count, temperature, latent_seed, seed_a, seed_b, frames)


# Gradio deletes its cached files by age only; under a crowd, the size cap keeps the disk from filling first.
CACHE_BYTES = int(float(os.environ.get("MNIST_GAN_CACHE_MB") or 512) * 2**20)


def _forget(removed: list) -> None:
    removed = {str(path) for path in removed}
    for tracked in demo.temp_file_sets:  # else gradio would remember the deleted files for ever
        tracked.difference_update(removed)


threading.Thread(target=cache.keep_under, args=(demo.GRADIO_CACHE, CACHE_BYTES), kwargs={"on_removed": _forget},
                 daemon=True, name="cache-cap").start()


if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), **LAUNCH)
