"""What a system call, or a hop to a worker thread, costs a thread of the app when another thread runs Python: a
result file read whole (as the event loop read each result image it sent, before they were kept in memory), a
spot-the-fake round's 16 PNGs written through a temporary file each (at first), in place (then) and kept in memory
only (ResultFiles.pngs_once), an event's 21 outputs made by gradio with a worker thread each (as before) and in place
(ui.gradio_glue.quick_processing), and a gr.update's component made with gradio finding its cache folder (as before)
and with the folder named once (app.py); each alone, then beside one thread busy with Python, the old and new ways
alternating. And one pass of the cache cap over a results folder of `folder_files` files: reading the folder (a
stat a file, as before) and going by the index of what was written.

A thread that makes a system call gives up the GIL; coming back, it waits until the thread holding the GIL lets
go, at most `sys.getswitchinterval()` (5 ms). Under a class the app's event loop and its event threads are such
threads, and each file read or written on their way is one more wait.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SPIN_LIMIT_S = 600.0  # the busy thread stops by itself after this long, whatever happens to the benchmark
BUSY = "bench-gil-busy"


def measure(rounds: int = 5, repeats: int = 50, folder_files: int = 20_000) -> list[dict]:
    from mnist_gan.atomic_files import atomic_write
    from mnist_gan.images import upscale
    from mnist_gan.serving.served_files import ResultFiles, png_bytes

    rng = np.random.default_rng(0)
    images = [upscale(rng.integers(0, 256, (28, 28), dtype=np.uint8), 4) for _ in range(16)]

    def through_temporary_files(files: ResultFiles) -> None:  # png_once at first: a temporary file and a rename each
        for image in images:
            path = files.folder / f"{secrets.token_hex(12)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, png_bytes(image), sync=False)

    def in_place(files: ResultFiles) -> None:  # pngs_once then: each written in place, all names drawn at once
        token = secrets.token_hex(12 * len(images))
        for i, image in enumerate(images):
            with open(files.folder / f"{token[24 * i:24 * (i + 1)]}.png", "xb") as f:
                f.write(png_bytes(image))

    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-gan-gil-") as folder:
        files = ResultFiles(Path(folder) / "results", 10**9)
        one = Path(files.png(images[0]))
        ways = {"a 3 kB result file read whole (Path.read_bytes)": [lambda: one.read_bytes()],
                "a round's 16 PNGs made (temporary files / written in place / kept in memory only)": [
                    lambda: through_temporary_files(files), lambda: in_place(files), lambda: files.pngs_once(images)],
                "an event's 21 outputs made by gradio (a worker thread each / in place)": _outputs_made(),
                "a gr.update's component made by gradio (its cache folder found each time / named once)":
                    _updates_made()}
        for busy in (False, True):
            stop, spinning = threading.Event(), threading.Event()
            if busy:
                threading.Thread(target=_spin, args=(stop, spinning), daemon=True, name=BUSY).start()
                spinning.wait(10)  # busy before the first timing (a first row of 250 reads can end before it starts)
            try:
                for what, fns in ways.items():
                    times = [[] for _ in fns]
                    for _ in range(rounds):
                        for i, fn in enumerate(fns):
                            start = time.perf_counter()
                            for _ in range(repeats):
                                fn()
                            times[i].append(1000 * (time.perf_counter() - start) / repeats)
                    rows.append({"what": what, "beside": "one busy thread" if busy else "nothing",
                                 "median ms": " / ".join(f"{statistics.median(t):.4g}" for t in times),
                                 "rounds x repeats": f"{rounds} x {repeats}"})
            finally:
                stop.set()
        rows.append(_cap_pass(rounds, folder_files))
    return rows


def _outputs_made() -> list:
    """An event's outputs as the Train form's reload sends them (20 numbers and a line of text) made by gradio's
    postprocess_data: each in a worker thread of its own, one after another (gradio 6.31), and in place
    (ui.gradio_glue.quick_processing). Two callables, each one event's outputs made once."""
    import asyncio

    import gradio as gr
    from gradio import blocks
    from gradio.state_holder import SessionState

    from ui.gradio_glue import quick_processing

    with gr.Blocks() as demo:
        outputs = [gr.Number() for _ in range(20)] + [gr.Markdown()]
        gr.Button().click(lambda: None, None, outputs)
    event, values = demo.fns[0], [1.0] * 20 + ["**a line** of text"]
    threads = blocks.anyio
    quick_processing()
    in_place = blocks.anyio

    def made(way) -> None:
        blocks.anyio = way
        try:
            asyncio.run(demo.postprocess_data(event, values, SessionState(demo)))
        finally:
            blocks.anyio = in_place

    return [lambda: made(threads), lambda: made(in_place)]


def _updates_made() -> list:
    """A slider's gr.update as gradio 6.31 makes it (a new component), with gradio finding its cache folder (a
    resolve() of <temp>/gradio, as before) and with the folder named in GRADIO_TEMP_DIR (as app.py names it now).
    Two callables, each one update made."""
    import os

    import gradio as gr

    slider = gr.Slider(0, 10, render=False)
    named = str((Path(tempfile.gettempdir()) / "gradio").resolve())

    def made(folder: str | None) -> None:
        before = os.environ.pop("GRADIO_TEMP_DIR", None)
        if folder:
            os.environ["GRADIO_TEMP_DIR"] = folder
        try:
            gr.Slider(**{**slider.constructor_args, "value": 3, "render": False})
        finally:
            os.environ.pop("GRADIO_TEMP_DIR", None)
            if before is not None:
                os.environ["GRADIO_TEMP_DIR"] = before

    return [lambda: made(None), lambda: made(named)]


def _cap_pass(rounds: int, count: int) -> dict:
    """One pass of the cache cap over `count` files of 3.2 kB, nothing to delete: the old way and the new."""
    from mnist_gan.serving.served_files import ResultFiles, trim

    with tempfile.TemporaryDirectory(prefix="mnist-gan-cap-") as folder:
        files = ResultFiles(Path(folder) / "results", 10**12)
        for i in range(count):
            files.write(i.to_bytes(4, "little") * 800, ".png")
        times = [[], []]
        for _ in range(rounds):
            for i, fn in enumerate((lambda: trim(files.folder, files.max_bytes), files.trim)):
                start = time.perf_counter()
                fn()
                times[i].append(1000 * (time.perf_counter() - start))
    return {"what": f"the cache cap's pass over {count:,} result files (reading the folder / the index)",
            "beside": "nothing", "median ms": " / ".join(f"{statistics.median(t):.4g}" for t in times),
            "rounds x repeats": f"{rounds} x 1"}


def _spin(stop: threading.Event, spinning: threading.Event) -> None:
    """Python work, holding the GIL whenever it may (as an event's thread does under a class)."""
    deadline = time.monotonic() + SPIN_LIMIT_S
    while not stop.is_set() and time.monotonic() < deadline:
        sum(range(1000))
        spinning.set()
