"""A class on the app: 50 scripted visitors for 60 s while a training run trains (testing/crowd.py: each replays
what the page sends: page loads, Resample, slider drags, Look inside, spot-the-fake rounds; every 10th is a script
on the REST API), and one headless Chromium tab among them, timing slider moved -> new digit shown (bench/slider.py's
method). Then the server's CPU per action, each kind measured alone.

`python -m bench crowd --before /work/baseline` runs the same crowd against another checkout's app.py first (the
app before the in-browser generator: its page draws every Resample and slider move on the server), then this one,
back to back, and prints them side by side.

`--split` runs the app and its training on one CPU and the visitors (the driver, the Chromium tab) on the other: a
Space of one CPU whose visitors' machines are their own, which this one machine cannot otherwise show (with
`--visitors 25`, the class's load per CPU of a two-CPU Space's 50).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.appserver import met
from bench.in_browser import WATCH
from testing.app import ROOT
from testing.browser import browser, wait_for_grid, wait_for_panel
from testing.crowd import SECONDS, VISITORS, run_crowd
from testing.system import cpu_seconds, descendants, percentile

MAX_MOVES = 1_000  # the tab's moves: bounded in count as well as by the crowd's time
SHOWN_TIMEOUT_MS = 5_000
FIGURES_ENV = "MNIST_GAN_CROWD_FIGURES"  # a file to write every figure of the runs to
MOVE_EVERY_S = 0.25  # the tab's pace: a slider moved four times a second, not flat out (its CPU is the class's own)
OWN = ("gradio_api/", "draw/", "web-assets/", "png")  # what the driver asks for itself (events, in-browser drawing)


def tab(url: str, ready, go, seconds: float) -> dict:
    """One Chromium tab among the visitors: its page's files (handed to the visitors' first visits), then slider
    moves in the Latent explorer for `seconds`, each timed from its `input` event to the new digit shown."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with browser() as chromium:
        page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(url)
        wait_for_grid(page)
        in_browser = page.evaluate("!!window.mnistGan")
        if in_browser:
            wait_for_panel(page, "grid")
        entries = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        ready(sorted({name[len(url):] for name in entries
                      if name.startswith(url) and not name[len(url):].startswith(OWN)}))
        page.get_by_role("tab", name="Latent explorer").click()
        if in_browser:
            wait_for_panel(page, "latent")
        else:
            page.wait_for_selector("#latent img", timeout=60_000)
        page.evaluate(WATCH)
        go.wait(600)
        processes = [pid for pid in descendants(os.getpid()) if "chrom" in _name(pid)]  # not the app: a child too
        cpu = sum(cpu_seconds(processes).values())
        deadline, missed, started = time.monotonic() + seconds, 0, time.monotonic()
        for i in range(MAX_MOVES):
            if time.monotonic() > deadline:
                break
            time.sleep(max(0.0, started + i * MOVE_EVERY_S - time.monotonic()))
            if i % 30 == 0:  # 30 steps of 0.1 along one slider, then the next: every latent is new
                page.locator(f"#slider-{(i // 30) % 8} input[type=range]").focus()
            shown = page.evaluate("window.__shown.length")
            page.keyboard.press("ArrowRight" if (i // 240) % 2 == 0 else "ArrowLeft")
            try:
                page.wait_for_function(f"window.__shown.length > {shown}", timeout=SHOWN_TIMEOUT_MS)
            except PlaywrightTimeout:
                missed += 1
        times = page.evaluate("window.__shown")
        where = page.evaluate("window.mnistGan ? window.mnistGan.panels.latent.last.mode : 'server'")
        used = sum(cpu_seconds(processes).values()) - cpu
        wall = time.monotonic() - started
    return {"moves": len(times), "none_shown": missed, "median_ms": round(statistics.median(times), 1) if times else None,
            "p90_ms": round(percentile(times, 0.9), 1) if times else None, "drawn": where,
            "chromium_cores": round(used / wall, 2)}


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().lower()
    except OSError:
        return ""


def crowd(root: Path, visitors: int, seconds: float, split: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="mnist-gan-crowd-") as folder:
        return run_crowd(Path(folder), visitors, seconds, root=root, observer=tab, split=split)


def rows(runs: dict[str, dict]) -> list[dict]:
    """The runs side by side: one row per figure, a column per run."""
    names = list(runs)
    table = []

    def row(what: str, value, target: str = "", ok=None) -> None:
        found = {"what": what}
        verdicts = []
        for name in names:
            found[name] = value(runs[name])
            if ok is not None:
                verdicts.append(f"{name}: {met(ok(runs[name]))}")
        found["target"] = target
        if ok is not None:
            found["met"] = ", ".join(verdicts) if len(names) > 1 else verdicts[0].split(": ")[1]
        table.append(found)

    def a(kind: str, key: str):
        return lambda f: f["actions"][kind][key]

    row("visitors, seconds (every 10th a REST script)", lambda f: f"{f['visitors']}, {f['seconds']}"
        + (f"; the app and its run on CPU {_cpus(f['app_cpus'])} only, the visitors on the others"
           if f.get("app_cpus") else ""))
    row("errors", lambda f: len(f["errors"]), "0", lambda f: not f["errors"])
    row("server calls (HTTP requests and queue events), calls/s", lambda f: f"{f['server_calls']:,}, "
        f"{f['calls_per_s']}")
    row("server calls p50 / p99 ms", lambda f: f"{f['p50_ms']} / {f['p99_ms']}", "p99 <= 500 ms",
        lambda f: f["p99_ms"] is not None and f["p99_ms"] <= 500)
    row("server calls p99 ms, a first visit's page files (gradio's scripts, styles, fonts) aside",
        lambda f: f["p99_ms_without_page_files"])
    for kind in ("page load", "resample", "slider move", "look inside", "spot round", "api generate"):
        row(f"{kind}: count; server calls each; p50 / p99 ms to all shown"
            + (" (a drag's last move)" if kind == "slider move" else ""),
            lambda f, k=kind: f"{a(k, 'count')(f):,}; {_each(f, k)}; {a(k, 'p50_ms')(f)} / {a(k, 'p99_ms')(f)}")
    for kind in ("page load", "resample", "slider move", "look inside", "spot round", "api generate"):
        row(f"server CPU ms per {kind} (measured alone)", lambda f, k=kind: a(k, "cpu_ms_alone")(f),
            "~0" if kind == "slider move" else "",
            (lambda f: (a("slider move", "cpu_ms_alone")(f) or 0) < 1) if kind == "slider move" else None)
    row("Chromium tab: slider moved -> new digit shown, median / p90 ms (moves; drawn)",
        lambda f: _tab(f["browser"]))
    row("training steps/s: alone, with the crowd (ratio)", lambda f: f"{f['training']['steps_per_s_alone']}, "
        f"{f['training']['steps_per_s_crowd']} ({f['training']['ratio']})", ">= 0.8",
        lambda f: (f["training"]["ratio"] or 0) >= 0.8)
    row("app RSS MiB: start, peak, end; growth over the second half, over the last 20 s",
        lambda f: f"{f['rss_mib']['start']}, {f['rss_mib']['peak']}, {f['rss_mib']['end']}; "
        f"{_signed(f['rss_mib']['second_half_mib'])}, {_signed(f['rss_mib']['last_20_s_mib'])}", "flat")
    row("model file fetched: times, by visitors", lambda f: f"{f['model_file']['fetches']}, "
        f"{f['model_file']['visitors_fetching']}", "once per visitor")
    row("cores busy during the crowd: app server, training (alone), driver, Chromium tab; the rest of the machine",
        lambda f: f"{f['cores']['server_crowd']}, {f['cores']['training_crowd']} ({f['cores']['training_alone']}), "
        f"{f['cores']['driver_crowd']}, {f['browser'].get('chromium_cores', '')}; {_others(f)}")
    row("requests sent again (a kept-alive connection closed under them, as a browser resends)",
        lambda f: f["resent"])
    return table


def _cpus(cpus: list[int]) -> str:
    return ", ".join(map(str, cpus))


def _signed(value) -> str:
    return "" if value is None else f"{value:+}"


def _others(f: dict) -> float:
    """Cores the machine's other processes were busy with during the crowd (it is shared)."""
    c = f["cores"]
    ours = c["server_crowd"] + c["training_crowd"] + c["driver_crowd"] + (f["browser"].get("chromium_cores") or 0)
    return round(max(0.0, c["machine_crowd"] - ours), 2)


def _each(f: dict, kind: str) -> str:
    count = f["actions"][kind]["count"]
    return f"{f['actions'][kind]['server_calls'] / count:.1f}" if count else ""


def _tab(b: dict) -> str:
    if "error" in b or not b:
        return b.get("error", "no tab")
    return f"{b['median_ms']} / {b['p90_ms']} ({b['moves']}; {b['drawn']}; {b['none_shown']} none shown)"


def measure(rounds: int = 1, visitors: int = VISITORS, seconds: float = SECONDS, before: str | None = None,
            split: bool = False) -> list[dict]:
    """One crowd against this checkout; with `before` (another checkout), that one first, back to back; `split`:
    each with the app on a CPU of its own."""
    runs = {}
    if before:
        runs["before"] = crowd(Path(before), visitors, seconds, split)
    runs["after" if before else "this app"] = crowd(ROOT, visitors, seconds, split)
    if os.environ.get(FIGURES_ENV):  # every figure of every run (per request kind, the errors), as JSON
        Path(os.environ[FIGURES_ENV]).write_text(json.dumps(runs, indent=1))
    return rows(runs)
