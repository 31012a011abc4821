"""A class on the app while a run trains, all on 127.0.0.1: scripted visitors replaying the page (page loads,
Resample, slider drags, Look inside, spot-the-fake rounds) and a REST script; and scripted API clients calling
generate and latent. Zero errors, training goes on, the app's memory levels off, the in-browser actions cost the
server only what they really cost, gradio's temp folder stays under the app's cap. The full crowd's figures (50
visitors, 60 s, before and after the in-browser generator) are `python -m bench crowd`'s."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.crowd import KINDS, SCRIPT_EVERY, run_crowd
from testing.load import run_load

VISITORS, SECONDS = 12, 30.0  # one of them a REST script; each page visitor does every kind of action
MEMORY_GROWTH_MB = 300  # allowed RSS growth of the app from the start of the crowd to its peak
# After a first visit warmed the app (each model call traced once), a crowd's second half (hundreds of calls) may
# move the app's memory by allocator noise, not by a per-call leak. Gradio keeps at most state_session_capacity
# (200) sessions of ~0.3 MB: a page load is a session.
SECOND_HALF_MB = 40


@pytest.mark.slow
@pytest.mark.parametrize("one_address", [False, True], ids=["an-address-each", "behind-one-nat"])
def test_a_class_while_training_gets_answers_costs_what_the_page_costs_and_memory_levels_off(tmp_path, one_address):
    """Each visitor from an address of its own, or the class behind one school's NAT on a Space's per-client limits
    (each page's requests within its page's share, none refused for its classmates')."""
    f = run_crowd(tmp_path, VISITORS, SECONDS, idle_s=5.0, cpu_repeats=2, one_address=one_address)
    print({key: f[key] for key in ("errors", "p50_ms", "p99_ms", "server_calls", "actions", "model_file",
                                   "training", "rss_mib", "cores")})
    assert f["errors"] == [], f["errors"][:5]
    actions = f["actions"]
    assert all(actions[kind]["count"] >= 1 and not actions[kind]["failed"] for kind in KINDS), actions
    assert f["training"]["state"] == "running" and f["training"]["steps_per_s_crowd"] > 0, f["training"]
    # drawn in the browser: a slider move asks the server nothing, a Resample at most the next seed's latents
    assert actions["slider move"]["server_calls"] == 0, actions["slider move"]
    assert actions["resample"]["server_calls"] <= actions["resample"]["count"], actions["resample"]
    page_visitors = VISITORS - VISITORS // SCRIPT_EVERY
    assert f["model_file"] == {"fetches": page_visitors, "visitors_fetching": page_visitors,
                               "most_by_one_visitor": 1}, f["model_file"]  # once per visitor, then from its cache
    rss = f["rss_mib"]
    assert rss["peak"] - rss["start"] < MEMORY_GROWTH_MB, rss
    assert rss["second_half_calls"] >= 200 and rss["second_half_mib"] < SECOND_HALF_MB, rss  # it levels off


API_CLIENTS, API_SECONDS = 12, 45.0  # enough calls to pass the session bound (200) and to fill the cache past its cap


@pytest.mark.slow
def test_api_clients_while_training_get_answers_and_the_cache_stays_under_its_cap(tmp_path):
    """Scripts on the REST API (generate, latent; each image downloaded): every call a new session, every image a
    file in gradio's cache, capped small (2 MB) so the load must exercise the cap."""
    figures = run_load(tmp_path, API_CLIENTS, API_SECONDS)
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


def test_a_request_on_a_connection_closed_under_it_is_sent_again_on_a_new_one():
    """The server may close an idle kept-alive connection as a request leaves on it; the driver sends it again
    once, as a browser does, and on a new connection: another idle one may be closing too (a class once lost a Look
    so). A server on 127.0.0.1 answers on a new connection and closes each kept-alive one at its next request."""
    import asyncio

    from testing.crowd import Figures, PageConfig, Visitor

    async def scenario():
        served = []

        async def serve(reader, writer):
            answered = 0
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if answered:  # kept alive since its last answer: closed under the new request
                    served.append("closed")
                    writer.close()
                    return
                served.append(head.split(b" ")[1].decode())
                await asyncio.sleep(0.2)  # long enough for the first two requests to need a connection each
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                answered += 1

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        page = PageConfig({"components": [], "dependencies": [], "layout": {"id": 0}})
        visitor = Visitor(1, url, page, Figures(), [], "browser")
        try:
            first = await asyncio.wait_for(asyncio.gather(visitor.send("GET", url + "a"),
                                                          visitor.send("GET", url + "b")), 30)
            # two idle connections, both closing; a POST (a queue join), which aiohttp itself never sends again
            third = await asyncio.wait_for(visitor.send("POST", url + "c", json={}), 30)
        finally:
            await visitor.http.close()
            server.close()
        return served, first, third, visitor.figures.resent

    served, first, third, resent = asyncio.run(scenario())
    assert [a.status_code for a in first] == [200, 200] and third.status_code == 200 and third.text == "ok"
    assert sorted(served[:2]) == ["/a", "/b"] and served[2:] == ["closed", "/c"] and resent == 1


@pytest.mark.skipif(len(__import__("os").sched_getaffinity(0)) < 2, reason="a split class needs two CPUs")
def test_a_split_class_runs_the_app_and_its_run_on_one_cpu_and_the_visitors_on_the_others(tmp_path):
    """`bench crowd --split`: the app (and the training run it starts: a child inherits its CPUs) on the first
    CPU this process may use, the driver and its browser on the rest, this process's CPUs given back after."""
    import os
    import sys
    import time

    from testing.app import AppProcess
    from testing.crowd import visitors_apart

    mine = os.sched_getaffinity(0)
    with visitors_apart(False) as server:
        assert server is None and os.sched_getaffinity(0) == mine
    with pytest.raises(RuntimeError), visitors_apart(True) as server:
        assert server == {min(mine)} and os.sched_getaffinity(0) == mine - server
        app = AppProcess(tmp_path / "app", cpus=server)
        try:
            app.launch()
            deadline = time.monotonic() + 30
            running = [sys.executable, "app.py"]  # not yet this process's fork, nor taskset
            while time.monotonic() < deadline and \
                    Path(f"/proc/{app.process.pid}/cmdline").read_text().split("\0")[:2] != running:
                time.sleep(0.05)
            assert os.sched_getaffinity(app.process.pid) == server
        finally:
            app.kill()
            app.close()
        raise RuntimeError("the class ends")
    assert os.sched_getaffinity(0) == mine
