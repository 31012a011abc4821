"""python -m bench [NAME ...] [--json]: run benchmarks and print their tables."""

from __future__ import annotations

import argparse
import platform
import sys

from bench.common import print_table

BENCHMARKS = {
    "throughput": ("bench.throughput", "training images/s: fast trainer vs the plain loop; TensorBoard log on/off"),
    "quality": ("bench.quality", "time to quality: cFID against wall time, classic recipe vs the default config"),
    "efficiency": ("bench.efficiency", "FLOPs per step x steps/s over the float32 matmul peak; cost vs batch and model"),
    "sampling": ("bench.sampling", "in-process latency of a 64-image grid"),
    "load": ("bench.load", "20 scripted visitors for 60 s (generate, latent) while a run trains: calls/s, p50/p99, memory"),
    "api": ("bench.api", "generate (64 images) through the raw REST path: idle, while training, and the ratio"),
    "permalink": ("bench.permalink", "GET /png (64 images, kept-alive) beside the Gradio REST path, same run"),
    "mcp": ("bench.mcp", "an MCP tool call to generate (64 images) beside the REST path, interleaved, and the ratio"),
    "slider": ("bench.slider", "latent slider moved to new image shown, in headless Chromium: drawn in the browser, and by the server"),
    "crowd": ("bench.crowd", "a class: 50 scripted visitors replaying the page for 60 s while a run trains, a Chromium tab among them; --before DIR: another checkout's app first, side by side"),
    "browser": ("bench.in_browser", "Resample to a 64-digit grid shown, in the browser and by the server; a first visit's bytes and time to the first grid"),
    "watching": ("bench.watching", "training images/s with three browser tabs polling the Train tab, over none"),
    "serverloop": ("bench.server_loop", "requests/s and app CPU a request: gradio's uvicorn on uvloop + httptools vs asyncio + h11, alternating"),
    "gil": ("bench.gil", "a result file read, a spot round's 16 PNGs made and an event's outputs made, alone and beside a thread busy with Python; a cache-cap pass"),
    "coldstart": ("bench.coldstart", "`python app.py` to the first successful API response"),
    "memory": ("bench.memory", "peak RSS of the app serving, and of app + training child while a run trains"),
    "inside": ("bench.inside", "Inside the GAN: discriminate (with its heatmap) and invert, in process and via REST"),
    "inversion": ("bench.inversion", "inversion loss: pixels alone vs pixels + classifier features"),
    "sweep": ("bench.sweep", "4 trials one after another vs as a Ray Tune sweep, 2 at a time: wall time, images/s"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="benchmarks to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown tables")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds (medians reported)")
    parser.add_argument("--visitors", type=int, help="crowd: how many visitors (default 50)")
    parser.add_argument("--seconds", type=float, help="crowd: for how long (default 60)")
    parser.add_argument("--before", metavar="DIR", help="crowd: first the same crowd against DIR's app.py (a checkout "
                        "of the app before a change), then this one, back to back")
    parser.add_argument("--split", action="store_true", default=None, help="crowd: the app and its run on one CPU, "
                        "the visitors on the others (a one-CPU Space, its visitors' machines their own)")
    args = parser.parse_args(argv)
    import importlib
    import inspect
    import os

    print(f"# {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(BENCHMARKS[name][0])
        print(f"\n## {name}: {BENCHMARKS[name][1]}" if not args.json else "", file=sys.stderr)
        options = {name: getattr(args, name) for name in ("visitors", "seconds", "before", "split")
                   if getattr(args, name) is not None}
        accepted = inspect.signature(module.measure).parameters
        print_table(module.measure(rounds=args.rounds, **{k: v for k, v in options.items() if k in accepted}),
                    args.json)
    print(f"# load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
