"""Load: 20 concurrent scripted visitors call generate and latent through the raw REST path for 60 s while a training
run trains; throughput, latency percentiles, the run's progress, the app's memory and gradio's cache."""

from __future__ import annotations

import tempfile
from pathlib import Path

from testing.load import CLIENTS, SECONDS, run_load


def measure(rounds: int = 1, clients: int = CLIENTS, seconds: float = SECONDS) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="mnist-gan-load-") as folder:
        f = run_load(Path(folder), clients, seconds)
    rows = [{"what": f"all calls ({f['clients']} clients, {f['seconds']} s)", "calls": f["calls"],
             "calls/s": f["calls_per_s"], "p50 ms": f["p50_ms"], "p99 ms": f["p99_ms"], "errors": len(f["errors"])}]
    rows += [{"what": endpoint, "calls": f[endpoint]["calls"], "p50 ms": f[endpoint]["p50_ms"],
              "p99 ms": f[endpoint]["p99_ms"]} for endpoint in ("generate", "latent")]
    rss, cache = f["rss_mib"], f["cache_mib"]
    rows.append({"what": f"training steps during the load ({f['training']['state']})",
                 "calls": f["training"]["steps_during_load"]})
    rows.append({"what": "app RSS MiB: start, peak, end; second half's growth",
                 "calls": f"{rss['start']}, {rss['peak']}, {rss['end']}; {rss['second_half_mib']} over "
                          f"{rss['second_half_calls']} calls"})
    rows.append({"what": "gradio cache MiB: peak, bound, images served",
                 "calls": f"{cache['peak']}, {cache['bound']}, {cache['images_served']}"})
    return rows
