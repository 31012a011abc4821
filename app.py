"""mnist-gan: watch a GAN learn to write digits, and play with what it learned. `python app.py`

The page: a header with the model picker, and one tab per module of ui/ (layout, wiring and display formatting).
Every action belongs to a section of `mnist_gan.service.Service`, which validates and raises package errors; the
tabs show them as plain messages.

Importing this module builds nothing. `build(service)` lays the page out over a service; `launch(demo)` starts the
service (the start-up model) and serves the page; `close(demo)` stops both. `python app.py` (how a Space starts it)
does all three over a service from the environment, and `app.demo` (what `gradio app.py` looks up) is built on first
access.
"""

import faulthandler
import os
import signal
import tempfile
from pathlib import Path

# Before gradio, TensorFlow or huggingface_hub are imported: nothing phones home, and logs stay quiet.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# After every event gradio rebuilds a pandas summary of up to 10,000 past events for a monitoring page this app
# does not enable: a third of the CPU a request cost (profiled), growing as events pile up. Once per 1,000 instead.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
# Gradio finds its cache folder anew each time it makes a component, and it makes one for every gr.update an event
# returns: a resolve() of <temp>/gradio, a system call per folder on the way, each a wait for the GIL under a class
# (python -m bench gil: 2.1 -> 0.3 ms an update beside a busy thread). The same folder, named once.
os.environ.setdefault("GRADIO_TEMP_DIR", str((Path(tempfile.gettempdir()) / "gradio").resolve()))


import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from mnist_gan.service import Service  # noqa: E402
from mnist_gan.serving.served_files import ResultFiles  # noqa: E402
from ui.agents import McpRefusals, declare_resources, serve_mcp  # noqa: E402
from ui.common import FAST, PRIVATE, Page, on_event_loop, plain_errors  # noqa: E402
from ui.explore import ExplorerTab  # noqa: E402
from ui.generate import GenerateTab  # noqa: E402
from ui.gradio_glue import (  # noqa: E402
    LAUNCH_WITHOUT_PAGE_CHECK,
    cache_folder,
    endpoint,
    fast_result_outputs,
    forget_served,
    guard_queue,
    hide_gradio_events,
    keep_thread_pool,
    lazy_session_state,
    no_backend_switch_without_matplotlib,
    open_choices,
    quick_component_updates,
    quick_processing,
    woken_queue,
)
from ui.hub import HubTab  # noqa: E402
from ui.in_browser import WebAssets, style  # noqa: E402
from ui.inside import InsideTab  # noqa: E402
from ui.limits import Limits, QueueLimits, RequestLimits, request_client  # noqa: E402
from ui.page_files import PageFiles, RenderedPages, ResultFileRoute  # noqa: E402
from ui.routes import assets_route, drawing_routes, png_route  # noqa: E402
from ui.train import TrainTab  # noqa: E402

# Gradio deletes its cached files by age only; under a crowd, the size caps keep the disk from filling first: one
# for the results the app serves, one for everything else in gradio's cache (visitors' uploads, gradio's copies).
CACHE_BYTES = int(float(os.environ.get("MNIST_GAN_CACHE_MB") or 512) * 2**20)
UPLOADS_BYTES = int(float(os.environ.get("MNIST_GAN_UPLOADS_MB") or 64) * 2**20)
CSS = """
.pixels img { image-rendering: pixelated; }
.inside-figure label[data-testid="block-label"].float { position: static; margin: 0 0 6px 0; }
.inside-figure .icon-button-wrapper.top-panel { position: static; margin: 0 0 4px auto; width: fit-content; }
#spot-gallery .grid-wrap { height: auto !important; max-height: none !important; }
#spot-gallery .grid-container { grid-template-columns: repeat(8, minmax(0, 1fr)) !important;
  grid-template-rows: none !important; grid-auto-rows: auto !important; }
/* spot the fake: each number (and after the answer, the verdict) under its digit, not over it */
#spot-gallery .thumbnail-item { aspect-ratio: auto; height: auto; display: flex; flex-direction: column; }
#spot-gallery .thumbnail-item img { aspect-ratio: 1; width: 100%; height: auto; }
#spot-gallery .caption-label { position: static; max-width: none; border: none; border-radius: 0;
  text-align: center; opacity: 1; }
@media (max-width: 640px) {
  #spot-gallery .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)) !important; }
}
.run-status { line-height: 1.9; }
.run-status progress { width: 14em; vertical-align: middle; }
.state-running, .state-finished { color: #15803d; }
.state-failed { color: #b91c1c; }
.state-paused, .state-pausing, .state-stopping { color: #b45309; }
/* An image's label above it, not floating over it: there it hid the first digits of a grid and the first frames */
.labelled label[data-testid="block-label"] {
  position: static; margin: 0 0 var(--size-1) 0; width: fit-content;
}
/* and its download button beside the label (the block is its frame), not over the top-right digit; a block of a
   fixed height (the explorer's digit, the run's grid) gives the image what the label leaves */
.labelled { display: flex; flex-direction: column; }
.labelled .image-container { position: static; flex: 1 1 auto; min-height: 0; }
#grid-link { font-size: var(--text-sm); }
/* A phone: the picture before the controls that make it (the explorer's digit above its seed; its sliders follow);
   a run's status and plots before the form that starts one (most visitors watch) */
@media (max-width: 640px) {
  #grid-column, #latent, #latent-panel, #train-watch { order: -1; }
  #tabs [role="tab"] { padding-left: var(--size-2); padding-right: var(--size-2); }  /* all four on one line */
  div:has(> #model) { min-width: 100% !important; }  /* the picker on its own line, the description below */
}
""" + style()
LAUNCH = {"css": CSS, "theme": gr.themes.Soft(), "run_history": False, "footer_links": ["api"],
          # Each API call without a session is a new session, and gradio keeps ~0.3 MB per session, 10,000 by
          # default: 3 GB under a scripted crowd (measured). 200 bounds it; an evicted page only re-draws more.
          "state_session_capacity": 200,
          "max_file_size": "1mb"}  # gradio's upload route is open to anyone: see also ui/limits.py


def build(service: Service) -> gr.Blocks:
    """The page over `service`: a header with the model picker, and the tabs."""

    @plain_errors
    def models() -> list[dict]:
        """Every GAN the app can draw with (shipped, trained here, pulled from the Hub), the default first: the
        names the other tools take as `model`.

        Returns:
            a JSON list: name, source, description, architecture, latent_dim, steps (training steps)
            conditional: true when the model draws the digit it is asked for
        """
        return service.library.catalog()

    @plain_errors
    def on_model(model: str, mode: str):
        """A new model: its info, which digit pickers apply, the explorer's sliders, and the Inside tab's pickers
        and spot-the-fake record."""
        info = service.library.info(model)
        steps = f", trained {info['steps']:,} steps" if info["steps"] else ""
        text = f"**{model}**: {info['description']}{steps} · {info['source']}"
        conditional = info["conditional"]
        return (text, gr.update(visible=conditional), gr.update(visible=conditional),
                *explorer.sliders_for(model, mode), *inside.model_shown(model, conditional))

    def page_opened():
        """A new page: the start-up notice, and the model picker as it is now (a start-up pull adds a model)."""
        names = service.library.names()
        return (gr.update(value=f"**Note:** {service.notice}" if service.notice else "", visible=bool(service.notice)),
                gr.update(choices=names, value=service.library.default))

    with gr.Blocks(title="mnist-gan", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# mnist-gan\nWatch a GAN learn to write digits, and play with what it learned. Every image is "
                    "reproducible: same model, seed and settings, same pixels.")
        notice = gr.Markdown(visible=False, elem_id="notice")
        page = Page(service, ResultFiles(cache_folder(demo) / "mnist-gan", CACHE_BYTES), Limits.from_env(),
                    WebAssets.from_env())
        with gr.Row(equal_height=True):
            page.model = open_choices(gr.Dropdown(service.library.names(), value=service.library.default,
                                                  label="Model", allow_custom_value=True, scale=1, elem_id="model"))
            page.model_info = gr.Markdown(elem_id="model-info")
        generator, explorer, trainer, hub = GenerateTab(page), ExplorerTab(page), TrainTab(page), HubTab(page)
        # on a phone, tabs that do not fit wrap ("menu", the default, hid three of the four behind "...");
        # "Open in Latent explorer" switches tabs
        shown = {}  # the tabs by key: the Train tab sends its pictures again each time it is shown
        with gr.Tabs(overflow_behavior="wrap", elem_id="tabs") as tabs:
            inside = InsideTab(page, explorer, tabs)
            for tab, name, key in ((generator, "Generate", "generate"), (explorer, "Latent explorer", "latent"),
                                   (inside, "Inside the GAN", "inside"), (trainer, "Train", "train"),
                                   (hub, "Hub", "hub")):
                with gr.Tab(name, id=key) as shown[key]:
                    tab.build()

        # A model change (picker, "Use this model", a pull) or a new page refreshes both drawing tabs: the grid and
        # the interpolation at once (they need nothing of the model's info), the explorer's digit once its sliders
        # are the model's
        model_changed = {"fn": on_model, "inputs": [page.model, explorer.mode], **PRIVATE, **FAST,
                         "outputs": [page.model_info, generator.digit, explorer.digit, *explorer.sliders,
                                     *inside.model_outputs]}
        opened = demo.load(on_event_loop(page_opened), None, [notice, page.model], **PRIVATE, **FAST)
        for when, new_page in ((page.model.change, False), (opened.then, True)):
            when(**generator.draw)
            when(**explorer.interpolating)
            changed = when(**model_changed)
            if new_page:  # it has no latent to leave (one opened from Inside): no event to forget one
                changed.then(**explorer.explore)
            else:
                explorer.redraw(changed)
        trainer.wire(demo, pickers=[page.model, hub.model], tab=shown["train"])
        endpoint(models, "models")
        declare_resources(page)
    hide_gradio_events(demo)
    limits = page.limits
    guard_queue(demo, QueueLimits(limits).refusal, lambda request: request_client(request, limits.proxy_hops))
    keep_thread_pool(demo)
    woken_queue(demo)
    lazy_session_state()
    fast_result_outputs(page.files.folder, page.files.read)
    quick_component_updates()
    quick_processing()
    no_backend_switch_without_matplotlib()
    demo.mnist_gan_page = page  # what launch() and close() start and stop
    return demo


def launch(demo: gr.Blocks, **options):
    """Start the page's service (the start-up model) and its cache cap, then serve it; options go to
    demo.launch."""
    page = demo.mnist_gan_page
    page.service.start()
    page.files.start(cache_folder(demo), UPLOADS_BYTES, on_removed=lambda removed: forget_served(demo, removed))
    limits, drawing = page.limits, page.service.drawing
    mcp = serve_mcp()  # the MCP server at /gradio_api/mcp/, unless MNIST_GAN_MCP=0
    # an MCP client reads a refusal of the request limits only as a JSON-RPC error: McpRefusals wraps them;
    # gradio's page files first, from memory (a class's first visits fetch 103 each), the page rendered once, and
    # the app's result files from their folder
    middleware = [Middleware(PageFiles), Middleware(RenderedPages, config=lambda: demo.config),
                  Middleware(ResultFileRoute, files=page.files)] + \
        ([Middleware(McpRefusals)] if mcp else []) + \
        [Middleware(RequestLimits, limits=limits)]
    routes = [png_route(drawing, page.files, limits), *drawing_routes(drawing), assets_route(page.assets, drawing)]
    # Gradio's 40 running slots for events, plus one for each Train-tab stream allowed (an open page holds one)
    launch_options = {**LAUNCH, **LAUNCH_WITHOUT_PAGE_CHECK, "mcp_server": mcp,
                      "max_threads": 40 + limits.max_streams,
                      "app_kwargs": {"middleware": middleware, "routes": routes}}
    return demo.launch(**{"server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), **launch_options,
                          **options})


def close(demo: gr.Blocks) -> None:
    """Stop serving, and stop the training run (it saves)."""
    demo.close()
    demo.mnist_gan_page.files.stop()
    demo.mnist_gan_page.service.close()


def __getattr__(name: str):
    """`app.demo`, built on first access over a service from the environment (for `gradio app.py`)."""
    if name == "demo":
        globals()["demo"] = built = build(Service.from_env())
        return built
    raise AttributeError(f"module 'app' has no attribute {name!r}")


if __name__ == "__main__":
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID`: every thread's stack on stderr, to see where a stuck app waits
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    demo = build(Service.from_env())
    try:
        launch(demo)
    finally:
        demo.mnist_gan_page.service.close()
