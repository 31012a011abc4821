"""Load: concurrent visitors call generate and latent while a training run trains, all on 127.0.0.1: zero server
errors, training goes on, the app's memory levels off and gradio's temp folder stays under the app's cap. The
figures of the full load (20 clients for 60 s) are `python -m bench load`'s."""

from __future__ import annotations

import pytest

from testing.load import run_load

CLIENTS, SECONDS = 12, 45.0  # enough calls to pass the session bound (200) and to fill the cache past its cap
MEMORY_GROWTH_MB = 300  # allowed RSS growth of the app from the start of the load to its peak
# Gradio keeps at most state_session_capacity (200) sessions of ~0.3 MB: once past them, memory levels off. Over the
# second half of the load (hundreds of calls) it may move by allocator noise, not by a per-call leak.
SECOND_HALF_MB = 40


@pytest.mark.slow
def test_concurrent_clients_while_training_get_answers_and_memory_levels_off(tmp_path):
    figures = run_load(tmp_path, CLIENTS, SECONDS)
    print(figures)
    assert figures["errors"] == [], figures["errors"][:5]
    assert figures["generate"]["calls"] >= 100 and figures["latent"]["calls"] >= 100, figures
    assert figures["training"]["state"] == "running" and figures["training"]["steps_during_load"] > 0
    rss = figures["rss_mib"]
    assert rss["peak"] - rss["start"] < MEMORY_GROWTH_MB, rss
    assert rss["second_half_calls"] >= 200 and rss["second_half_mib"] < SECOND_HALF_MB, rss  # it levels off
    cache = figures["cache_mib"]
    assert cache["images_served"] > 1.5 * cache["bound"], "too little load to exercise the cache cap"
    assert cache["peak"] <= cache["bound"], cache  # without the cap it holds every image served
