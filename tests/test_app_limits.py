"""What one client can make the server hold or spend (ui/limits.py): open pages hold no slot a bystander needs,
bodies are limited by the bytes read whatever the headers say, a client is what the proxy says it is, a client's
backlog never delays another's first call, a class behind one address gets each page its share, and a local app
limits no scripted client unless told to."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from collections import Counter
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from testing.app import built_app, call_outcome, rest_call, served_app
from testing.system import rss_mb, wait_until
from ui import train
from ui.gradio_glue import in_turn
from ui.limits import STREAM_GROUP, Limits, PerMinute, client_of

SPACE = {"SPACE_ID": "alice/mnist-gan", "MNIST_GAN_ADMINS": "alice"}
# A Space's per-client limits, set one by one (in this process a Space's login button would need the Hub)
AS_ON_A_SPACE = {"MNIST_GAN_PROXY_HOPS": "1", "MNIST_GAN_UPLOADS_PER_MINUTE": "30", "MNIST_GAN_EVENTS_PER_PAGE": "16",
                 "MNIST_GAN_HEAVY_PER_PAGE": "1", "MNIST_GAN_STREAMS_PER_CLIENT": "60",
                 "MNIST_GAN_PAGES_PER_ADDRESS": "60"}
GENERATE = ["classic", 0, 4, "all digits", 1.0]


def stream_index(demo) -> int:
    return next(i for i, fn in demo.fns.items() if fn.concurrency_id == STREAM_GROUP)


async def open_pages(url: str, fn_index: int, pages: int, read: bool, headers: dict | None = None,
                     hold_s: float = 600.0):
    """Join the page-load stream `pages` times as a page does (a queue join, then the session's event stream);
    returns the join answers and the reading tasks (cancel them to close the pages)."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=hold_s), limits=httpx.Limits(max_connections=None))
    answers, tasks = [], []
    for i in range(pages):
        session = f"page-{i}-{time.monotonic_ns()}"
        answer = await client.post(url + "gradio_api/queue/join", headers=headers or {},
                                   json={"data": [], "fn_index": fn_index, "session_hash": session})
        answers.append(answer)
        if read and answer.status_code == 200:
            async def follow(session=session):
                async with client.stream("GET", url + "gradio_api/queue/data",
                                         params={"session_hash": session}) as events:
                    async for _ in events.aiter_lines():
                        pass
            tasks.append(asyncio.create_task(follow()))
    return client, answers, tasks


def bystander(url: str, tries: int = 3) -> list[float]:
    """Seconds a new visitor's `generate` takes, each bounded (a hang fails the test, it is not a speed check)."""
    seconds = []
    with httpx.Client(timeout=60) as http:
        for _ in range(tries):
            started = time.perf_counter()
            assert rest_call(http, url, "generate", GENERATE, timeout=60)[0] == "complete"
            seconds.append(time.perf_counter() - started)
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize("read", [True, False])
def test_two_hundred_open_pages_hold_no_slot_a_bystander_needs(tmp_path, read):
    """200 pages follow the run (more than Gradio's 40 slots), reading their events or not: a new visitor's call
    still answers, and the pages' streams all run."""
    with served_app(tmp_path) as (demo, url):
        async def scenario():
            client, answers, tasks = await open_pages(url, stream_index(demo), 200, read)
            try:
                assert [a.status_code for a in answers] == [200] * 200
                held = await asyncio.to_thread(wait_until, lambda: sum(
                    bool(job) and job[0].concurrency_id == STREAM_GROUP for job in demo._queue.active_jobs) >= 200,
                    60, "200 running streams")
                return held, await asyncio.to_thread(bystander, url)
            finally:
                for task in tasks:
                    task.cancel()
                await client.aclose()
        _, seconds = asyncio.run(scenario())
        print(f"bystander with 200 open pages ({'read' if read else 'unread'}): {seconds}")
        assert max(seconds) < 30  # a bound on a hang: without the extra slots it got no answer at all


@pytest.mark.slow
def test_an_abandoned_stream_ends_and_frees_its_slot(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "HEARTBEAT_S", 0.5)  # updates every half second: the guard decides within seconds
    monkeypatch.setattr(train, "UPDATE_S", 0.5)
    with served_app(tmp_path) as (demo, url):
        def streams() -> int:
            return sum(bool(job) and job[0].concurrency_id == STREAM_GROUP for job in demo._queue.active_jobs)

        async def scenario():
            client, answers, tasks = await open_pages(url, stream_index(demo), 5, read=False)
            try:
                await asyncio.to_thread(wait_until, lambda: streams() == 5, 30, "5 running streams")
                await asyncio.to_thread(wait_until, lambda: streams() == 0, 60, "the unread streams to end")
            finally:
                await client.aclose()
        asyncio.run(scenario())


def test_the_body_is_limited_by_what_is_read_whatever_the_headers_claim(tmp_path):
    with served_app(tmp_path) as (demo, url):
        host, port = url.split("//")[1].rstrip("/").split(":")
        rss_before = rss_mb(os.getpid())[0]
        for headers in (b"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n", b"Transfer-Encoding: chunked\r\n"):
            with socket.create_connection((host, int(port)), timeout=30) as s:
                s.sendall(b"POST /gradio_api/call/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          + headers + b"\r\n")
                try:
                    for _ in range(1000):  # 100 MB offered, 100 kB at a time
                        s.sendall(b"%x\r\n" % 100_000 + b"x" * 100_000 + b"\r\n")
                except OSError:  # the server answered and closed: what it had not read was never read
                    pass
                answer = s.recv(100)
            # refused once the limit is read, or at once where the HTTP parser (httptools, which uvicorn runs on
            # when it is installed) refuses a request that claims both a length and chunks: both read no more
            refusals = (b"HTTP/1.1 413", b"HTTP/1.1 400") if b"Content-Length" in headers else (b"HTTP/1.1 413",)
            assert answer.startswith(refusals), answer
        assert rss_mb(os.getpid())[0] - rss_before < 60  # not the 100 MB per request the headers once let in
        with httpx.Client(timeout=30) as http:
            files = [("files", (f"{i}.png", b"x" * 900_000, "image/png")) for i in range(60)]
            assert http.post(url + "gradio_api/upload", files=files).status_code == 413  # 54 MB in one upload
            assert http.post(url + "gradio_api/process_recording", content=b"x" * 1000).status_code == 404
            assert rest_call(http, url, "generate", GENERATE)[0] == "complete"  # and it answers on


def test_a_space_limits_every_client_and_a_local_app_none():
    space, local = Limits.from_env(SPACE), Limits.from_env({})
    assert space.proxy_hops == 1 and space.uploads_per_minute == 120 and space.events_per_page == 16
    assert space.heavy_per_page == {"inside-invert": 1, "inside": 2, "lab-heavy": 1} and space.png_per_client == 2
    assert space.pages_per_address == space.streams_per_client == 60  # a class of 50 behind one school's NAT
    assert (local.proxy_hops, local.uploads_per_minute, local.events_per_page, local.heavy_per_page,
            local.streams_per_client, local.pages_per_address, local.png_per_client) == (0,) + (None,) * 6
    # the names these had when they were per address still set them; the new names win
    before = {"MNIST_GAN_EVENTS_PER_CLIENT": "8", "MNIST_GAN_HEAVY_PER_CLIENT": "2"}
    assert Limits.from_env({**SPACE, **before}).events_per_page == 8
    assert Limits.from_env({**SPACE, **before}).heavy_per_page["inside"] == 4
    assert Limits.from_env({**SPACE, **before, "MNIST_GAN_EVENTS_PER_PAGE": "4"}).events_per_page == 4
    assert local.max_streams == space.max_streams == 400  # the slots: every app has them
    assert Limits.from_env({**SPACE, "MNIST_GAN_UPLOADS_PER_MINUTE": "off"}).uploads_per_minute is None
    assert Limits.from_env({"MNIST_GAN_UPLOADS_PER_MINUTE": "100"}).uploads_per_minute == 100


def test_a_client_is_what_the_proxy_appended():
    space = Limits(proxy_hops=1)
    assert client_of({"x-forwarded-for": "6.6.6.6, 203.0.113.9"}, "10.0.0.1", 1) == "203.0.113.9"
    assert client_of({b"x-forwarded-for": b"203.0.113.9"}, "10.0.0.1", 1) == "203.0.113.9"
    assert client_of({}, "127.0.0.1", space.proxy_hops) == "127.0.0.1"  # no proxy in between: the app's own call
    assert client_of({"x-forwarded-for": "6.6.6.6"}, "10.0.0.1", 0) == "10.0.0.1"  # locally the header is a claim
    table, now = PerMinute(2), 1000.0
    assert [table.allow("a", now), table.allow("a", now), table.allow("a", now)] == [True, True, False]
    for i in range(10_000):
        table.allow(f"c{i}", now + 1)
    assert len(table) == 10_001
    table.allow("late", now + 200)  # every other client has been idle for over a minute: all forgotten
    assert len(table) == 1


def test_on_a_space_a_client_cannot_choose_who_it_is_nor_outrun_its_share(tmp_path, monkeypatch):
    for name, value in {**AS_ON_A_SPACE, "MNIST_GAN_PAGES_PER_ADDRESS": "1"}.items():
        monkeypatch.setenv(name, value)
    with served_app(tmp_path) as (demo, url):
        with httpx.Client(timeout=60) as http:
            codes = [http.post(url + "gradio_api/upload", files={"files": ("a.png", b"x" * 100, "image/png")},
                               headers={"x-forwarded-for": f"10.9.{i}.1, 203.0.113.7"}).status_code for i in range(32)]
            assert codes[:30] == [200] * 30 and codes[30:] == [429, 429]  # a spoofed first value changes nothing
            other = http.post(url + "gradio_api/upload", files={"files": ("a.png", b"x", "image/png")},
                              headers={"x-forwarded-for": "203.0.113.8"})
            assert other.status_code == 200  # another visitor is not held back
            # an address's backlog of slow calls (each API call a page of its own): one page's worth of them may
            # wait, the others are refused at the door
            slow, gate = threading.Event(), threading.Event()
            page = demo.mnist_gan_page
            real = page.service.drawing.draw  # what generate runs for a grid it has not made before

            def held_draw(*args, **kwargs):
                slow.set()
                gate.wait(30)
                return real(*args, **kwargs)

            page.service.drawing.draw = held_draw
            try:
                mallory = {"x-forwarded-for": "203.0.113.66"}
                joins = [http.post(url + "gradio_api/call/generate", json={"data": GENERATE}, headers=mallory)
                         for _ in range(20)]
                codes = [j.status_code for j in joins]
                assert codes.count(200) == 16 and 400 in codes, codes
                assert "your address has 16 requests waiting or running already" in joins[-1].text
            finally:
                gate.set()
                page.service.drawing.draw = real
            assert rest_call(http, url, "generate", GENERATE, headers={"x-forwarded-for": "203.0.113.99"})[0] == \
                "complete"


def test_one_clients_inversions_never_delay_anothers_first(tmp_path, monkeypatch):
    """An inversion costs seconds: a page has one waiting or running at a time; an address's backlog of them (a
    script's API calls, each a page of its own) waits behind another address's first, which then runs first."""
    for name, value in AS_ON_A_SPACE.items():
        monkeypatch.setenv(name, value)
    with served_app(tmp_path) as (demo, url):
        inside = demo.mnist_gan_page.service.inside
        gate, started = threading.Event(), threading.Event()
        real = inside.invert

        def slow_invert(*args, **kwargs):
            started.set()
            gate.wait(30)
            return real(*args, **kwargs)

        inside.invert = slow_invert
        bob = {"x-forwarded-for": "203.0.113.5"}
        try:
            with httpx.Client(timeout=60) as http:
                image = http.post(url + "gradio_api/upload", files={"files": ("a.png", _digit_png(), "image/png")},
                                  headers=bob).json()[0]
                data = ["classic", {"path": image, "meta": {"_type": "gradio.FileData"}}, "auto", 1]
                mallory = {"x-forwarded-for": "203.0.113.66"}

                def invert(who: dict, page: str | None = None):
                    body = {"data": data, **({"session_hash": page} if page else {})}
                    return http.post(url + "gradio_api/call/invert", json=body, headers=who)

                first = invert(mallory, "mallory-page")
                assert first.status_code == 200 and started.wait(30)
                again = invert(mallory, "mallory-page")  # the same page: one at a time
                assert again.status_code == 400 and "an inversion waiting or running" in again.text
                more = [invert(mallory) for _ in range(5)]  # pages of their own: they wait their turn
                assert [m.status_code for m in more] == [200] * 5
                joined = invert(bob)
                assert joined.status_code == 200
                waiting = demo._queue.event_queue_per_concurrency_id["inside-invert"].queue
                assert [e.request.headers["x-forwarded-for"] for e in waiting] == \
                    ["203.0.113.5"] + ["203.0.113.66"] * 5  # bob's first call goes before mallory's backlog
                gate.set()
                assert call_outcome(http, url, "invert", joined, bob, 120)[0] == "complete"
        finally:
            gate.set()
            inside.invert = real


def test_a_class_behind_one_address_gets_each_page_its_share(tmp_path, monkeypatch):
    """A class behind a school's NAT is one address and many pages. Twelve pupils each deal a spot-the-fake round
    and answer once all were dealt (a class looks at its 16 digits for a while): every round is still there, and
    each is answered. (Per address, the first eight were gone: 4 rounds an address.)"""
    for name, value in AS_ON_A_SPACE.items():
        monkeypatch.setenv(name, value)
    school = {"x-forwarded-for": "198.51.100.7"}
    with served_app(tmp_path) as (demo, url), httpx.Client(timeout=60) as http:
        dealt = [rest_call(http, url, "spot_round", ["classic"], headers=school, session=f"pupil-{i}")
                 for i in range(12)]
        assert [kind for kind, _ in dealt] == ["complete"] * 12, dealt[:2]
        answers = [rest_call(http, url, "spot_answer", [outputs[0], [1, 2]], headers=school, session=f"pupil-{i}")
                   for i, (_, outputs) in enumerate(dealt)]
        assert [kind for kind, _ in answers] == ["complete"] * 12, [a for a in answers if a[0] != "complete"][:2]
        assert all(len(outputs[0]["fake"]) == 8 and outputs[0]["of"] == 16 for _, outputs in answers)


def test_a_new_page_sends_no_event_to_forget_a_latent_it_never_had(tmp_path):
    """After a model change the explorer forgets the latent it may have been sent from Inside (an event of its own,
    `leave`, before the digit is drawn again); a new page has none to forget, so its load chain has no such event:
    one Python event fewer in every page load."""
    with built_app(tmp_path) as demo:
        start = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "latent-start-z")
        model = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "model")

        def chain(first) -> list:
            found, todo = [], list(first)
            while todo:
                fn = todo.pop()
                found.append(fn)
                todo += [f for f in demo.fns.values() if f.trigger_after == fn._id]
            return found

        loaded = chain([fn for fn in demo.fns.values() if any(event == "load" for _, event in fn.targets)])
        changed = chain([fn for fn in demo.fns.values() if (model._id, "change") in fn.targets])
        assert loaded and changed
        assert not [fn for fn in loaded if start in fn.outputs]
        assert [fn for fn in changed if start in fn.outputs and fn.fn is not None]  # a model change still forgets it


def test_the_queue_serves_clients_in_turn():
    events = ["a1", "a2", "a3", "b1", "c1", "b2", "a4", "c2"]
    assert in_turn(events, lambda e: e[0]) == ["a1", "b1", "c1", "a2", "b2", "c2", "a3", "a4"]
    assert in_turn(["a1", "a2"], lambda e: e[0]) == ["a1", "a2"]  # one client: first come, first served
    assert in_turn(["a2", "a3", "b1"], lambda e: e[0], Counter(a=1)) == ["b1", "a2", "a3"]  # a1 is running


def test_a_local_app_limits_no_scripted_client(tmp_path):
    with served_app(tmp_path) as (demo, url):
        with httpx.Client(timeout=60) as http:
            codes = {http.post(url + "gradio_api/upload", files={"files": ("a.png", b"x" * 100, "image/png")}
                               ).status_code for _ in range(60)}
            assert codes == {200}  # 30 a minute is a Space's rule, not a script's on its own machine


def _digit_png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    from mnist_gan.data import SAMPLE_DATA

    with np.load(SAMPLE_DATA) as sample:
        digit = sample["x_test"][0]
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_call_without_a_session_builds_no_configs_it_does_not_use(tmp_path):
    """Every call without a session_hash is a new session; Gradio 6.31 would compute every block's config for each
    (~51 ms of CPU, most of a generate's cost). The app computes them on demand, and a page still gets them all."""
    from gradio.state_holder import SessionState

    with served_app(tmp_path) as (demo, url):
        session = SessionState(demo)
        assert dict.__len__(session.config_values) == 0  # none computed yet (Gradio's own: all 374 of them)
        assert session.config_values[next(iter(demo.blocks))]  # one, when asked for
        assert dict.__len__(session.config_values) == 1
        assert len(list(session.components)) == len(demo.blocks)  # and all of them for a deep link
        # an event's outputs only mark configs stale: a gr.update (a new block, its value set) computes nothing
        # until read, and then the config Gradio would have written: the new block's props, the value set
        session = SessionState(demo)
        key, picker = next((k, b) for k, b in demo.blocks.items() if getattr(b, "elem_id", None) == "model")
        session[key] = type(picker)(**{**picker.constructor_args, "choices": ["a", "b"], "render": False})
        session._update_config(key)
        session._update_value_in_config(key, "b")
        assert dict.__len__(session.config_values) == 0
        expected = demo.default_config.config_for_block(key, [], session[key])
        expected["props"]["value"] = "b"
        assert session.config_values[key] == expected and expected["props"]["choices"] == [("a", "a"), ("b", "b")]
        session[key] = type(picker)(**{**picker.constructor_args, "render": False})  # an update without a value
        assert session.config_values[key]["props"]["value"] == picker.value  # the value set before is gone
        with httpx.Client(timeout=60) as http:
            assert all(rest_call(http, url, "generate", GENERATE)[0] == "complete" for _ in range(5))


def test_a_client_follows_the_run_from_its_share_of_pages_and_all_pages_from_max_streams(tmp_path, monkeypatch):
    """Each open page holds a slot while it follows the run: one address gets its share, all pages the cap."""
    for name, value in {**AS_ON_A_SPACE, "MNIST_GAN_STREAMS_PER_CLIENT": "3", "MNIST_GAN_MAX_STREAMS": "5"}.items():
        monkeypatch.setenv(name, value)
    with served_app(tmp_path) as (demo, url):
        async def scenario():
            opened = [await open_pages(url, stream_index(demo), pages, read=False,
                                       headers={"x-forwarded-for": who})
                      for pages, who in ((4, "203.0.113.66"), (3, "203.0.113.7"))]
            for client, _, _ in opened:
                await client.aclose()
            return [answers for _, answers, _ in opened]
        mallory, others = asyncio.run(scenario())
        assert [a.status_code for a in mallory[:3]] == [200] * 3 and mallory[3].status_code != 200
        assert "3 pages from your address already follow the training run" in mallory[3].text
        assert [a.status_code for a in others[:2]] == [200] * 2 and others[2].status_code != 200
        assert "showing the training run to 5 pages already" in others[2].text
        with httpx.Client(timeout=60) as http:  # and no other kind of call is held back by the full streams
            assert rest_call(http, url, "generate", GENERATE, headers={"x-forwarded-for": "203.0.113.7"})[0] == \
                "complete"


def test_a_page_has_at_most_two_looks_inside_and_one_run_animation_at_a_time(tmp_path, monkeypatch):
    """D's and G's pulls, morphs and verdicts cost ~a second of CPU each, a run's GIF ~5 s: on a Space a page
    has two of the first kind and one of the second waiting or running, another page at its address (a classmate
    behind the same NAT) its own, up to the address's pages' worth; another address is not held back."""
    for name, value in {**AS_ON_A_SPACE, "MNIST_GAN_PAGES_PER_ADDRESS": "2"}.items():
        monkeypatch.setenv(name, value)
    with served_app(tmp_path) as (demo, url):
        service = demo.mnist_gan_page.service
        gate = threading.Event()

        def held(real):
            def wait_then_run(*args, **kwargs):
                gate.wait(30)
                return real(*args, **kwargs)
            return wait_then_run

        real_pull, real_frames = service.inside.z_pull, service.lab.atlas_frames
        service.inside.z_pull, service.lab.atlas_frames = held(real_pull), held(real_frames)
        mallory, bob = {"x-forwarded-for": "203.0.113.66"}, {"x-forwarded-for": "203.0.113.8"}
        try:
            with httpx.Client(timeout=60) as http:
                image = http.post(url + "gradio_api/upload", files={"files": ("a.png", _digit_png(), "image/png")},
                                  headers=bob).json()[0]
                upload = {"path": image, "meta": {"_type": "gradio.FileData"}}
                calls = {"z_pull": ["classic", 0, "auto", 5], "d_pull": ["classic", upload, "auto", 5],
                         "morph": ["mlp-cond", "3", "8", 0, 4], "discriminate": ["classic", upload, "auto"],
                         "atlas_gif": [None], "runs_compare": [["a", "b"], None]}

                def join(name, who, page="page-1"):
                    return http.post(url + f"gradio_api/call/{name}", json={"data": calls[name], "session_hash": page},
                                     headers=who)

                accepted = [join("z_pull", mallory), join("z_pull", mallory), join("atlas_gif", mallory)]
                assert [a.status_code for a in accepted] == [200] * 3
                for name in ("z_pull", "d_pull", "morph", "discriminate", "atlas_gif", "runs_compare"):
                    refused = join(name, mallory)
                    assert refused.status_code == 400 and "a request of this kind waiting or running" in \
                        refused.text, (name, refused.status_code, refused.text)
                classmate = [join("z_pull", mallory, "page-2"), join("d_pull", mallory, "page-2")]
                assert [c.status_code for c in classmate] == [200] * 2  # the same address, another page
                third = join("morph", mallory, "page-3")  # two pages' worth of the address's: 4 of the kind
                assert third.status_code == 400 and "your address has 4 of these waiting or running" in third.text
                # one page each: a page's answers come on its session's one stream
                bystander = [join("morph", bob, "bob-1"), join("atlas_gif", bob, "bob-2")]
                assert [b.status_code for b in bystander] == [200] * 2
                gate.set()
                morphed = call_outcome(http, url, "morph", bystander[0], bob, 60)
                assert morphed[0] == "complete", morphed
        finally:
            gate.set()
            service.inside.z_pull, service.lab.atlas_frames = real_pull, real_frames


def test_a_client_draws_at_most_two_new_png_grids_at_a_time(tmp_path, monkeypatch):
    """A new /png grid costs a draw; a third one at once is answered 429 with when to retry, and another client's
    is drawn. A grid already made is read back, never refused."""
    for name, value in {**AS_ON_A_SPACE, "MNIST_GAN_PNG_PER_CLIENT": "2"}.items():
        monkeypatch.setenv(name, value)
    with served_app(tmp_path) as (demo, url):
        drawing = demo.mnist_gan_page.service.drawing
        real, gate, drawn = drawing.draw, threading.Event(), []

        def held_draw(*args, **kwargs):
            drawn.append(1)
            gate.wait(30)
            return real(*args, **kwargs)

        drawing.draw = held_draw
        mallory, bob = {"x-forwarded-for": "203.0.113.66"}, {"x-forwarded-for": "203.0.113.8"}
        answers = {}
        with httpx.Client(timeout=60) as http:
            def get(seed, who):
                answers[seed] = http.get(url + f"png?seed={seed}&n=4", headers=who)

            try:
                threads = [threading.Thread(target=get, args=(seed, mallory)) for seed in (1, 2)]
                for t in threads:
                    t.start()
                wait_until(lambda: len(drawn) == 2, 30, "two grids being drawn")
                third = http.get(url + "png?seed=3&n=4", headers=mallory)
                assert third.status_code == 429 and third.headers["retry-after"] == "1", third.text
                assert "at most 2 new grids at a time" in third.text
                threads.append(threading.Thread(target=get, args=(4, bob)))
                threads[-1].start()
                wait_until(lambda: len(drawn) == 3, 30, "another client's grid being drawn")
            finally:
                gate.set()
                for t in threads:
                    t.join(60)
            assert [answers[s].status_code for s in (1, 2, 4)] == [200] * 3
            assert all(answers[s].content.startswith(b"\x89PNG") for s in (1, 2, 4))
            again = [http.get(url + "png?seed=1&n=4", headers=mallory) for _ in range(3)]  # made: read back
            assert [a.status_code for a in again] == [200] * 3
        drawing.draw = real


def test_a_pages_load_events_wait_for_no_worker_thread_and_spot_the_fakes_marks_for_nothing(tmp_path):
    """The events of microseconds a class sends most (a page's load events that read the run's status or the model
    list, the Inside source switch, the explorer's new seed) are coroutines, run on gradio's event loop: a worker
    thread's hop waits for the GIL behind everything else. The rest (a model, a file) stay in threads. Spot the
    fake's marks are the page's own: a click on a thumbnail sends nothing, and the answer carries the ticked boxes."""
    import inspect

    with built_app(tmp_path) as demo:
        on_loop = {fn.fn.__name__ for fn in demo.fns.values() if inspect.iscoroutinefunction(fn.fn)}
        assert {"page_opened", "form_of_run", "controls", "shown_for", "<lambda>"} <= on_loop
        assert not {"_look", "_new_round", "_answer", "on_model", "curves"} & on_loop
        block = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
        gallery, marked = block["spot-gallery"], block["spot-marked"]
        assert not [fn for fn in demo.fns.values() if any(target == gallery._id for target, _ in fn.targets)]
        assert not [fn for fn in demo.fns.values() if any(target == marked._id for target, _ in fn.targets)]
        answer = next(fn for fn in demo.fns.values() if fn.fn and fn.fn.__name__ == "_answer")
        assert marked in answer.inputs


@pytest.mark.slow
def test_a_new_grid_atlas_and_curves_are_drawn_once_for_all_the_pages_that_follow_the_run(tmp_path, monkeypatch):
    """Each open page's stream sends the run's new sample grid, latent atlas and curves; under a class, each page
    drew them again (an atlas ~25 ms, on the event loop). Three pages, one drawing of each, and the same files."""
    with served_app(tmp_path) as (demo, _):
        service, tab = demo.mnist_gan_page.service, demo.fns[stream_index(demo)].fn.__self__
        service.training.start(data="sample", architecture="classic", batch_size=32, steps=2000)
        try:
            wait_until(lambda: len(service.training.status().atlas_steps) >= 2, 300, "two atlases")
            # while it trains, a page gets the curves another page got moments ago (CURVES_SHARED_S)
            monkeypatch.setattr(train, "CURVES_SHARED_S", 600.0)
            drawn_for, steps = tab.curves(), service.training.status().step
            wait_until(lambda: service.training.status().step > steps, 60, "more steps")
            assert tab.curves() is drawn_for
            service.training.pause()
            wait_until(lambda: service.training.status().state == "paused", 120, "the pause")
            drawn = {"grid": 0, "atlas": 0, "curves": 0}

            def counted(name, draw):
                def counting(*args):
                    drawn[name] += 1
                    return draw(*args)
                return counting

            monkeypatch.setattr(service.training, "grid", counted("grid", service.training.grid))
            monkeypatch.setattr(service.lab, "atlas", counted("atlas", service.lab.atlas))
            monkeypatch.setattr(train, "long_rows", counted("curves", train.long_rows))
            pages = [tab.tick({}, None) for _ in range(3)]
            plots = [tab.curves() for _ in range(3)]  # the event each page's tick sets off when the curves changed
            assert drawn == {"grid": 1, "atlas": 1, "curves": 2}  # the two plots, once: paused, their last points
            assert plots[0] is not drawn_for
            accuracy = plots[0][0]
            assert plots[0] == plots[2] and accuracy["mark"] == "line"
            assert accuracy["columns"] == ["step", "series", "value"]
            assert {series for _, series, _ in accuracy["data"]} == set(train.ACCURACY.values())
            images = [(outputs[3], outputs[5 + tab.lab.outputs.index(tab.lab.atlas_image)]) for outputs in pages]
            assert len(set(images)) == 1 and all(Path(path).is_file() for path in images[0])
            assert tab.show_grid(0, None)[0] != images[0][0] and drawn["grid"] == 2  # an earlier grid: drawn now
            assert tab.show_grid(0, None)[0] and drawn["grid"] == 2  # and once
        finally:
            service.training.stop()


def test_an_events_result_files_skip_gradios_path_checks_and_reach_the_page_as_gradio_sends_them(tmp_path,
                                                                                                   monkeypatch):
    """Gradio checks every output file against its folders (a realpath of both sides each time), twice per output;
    the app's own result files skip that, and what the page gets is what gradio's own code makes of them. Any other
    file goes through gradio's checks. A value that holds no file (a plot's points) is not walked for files."""
    import gradio as gr
    import numpy as np
    from gradio import processing_utils, utils
    from gradio_client import utils as client_utils

    from ui.gradio_glue import plot_value

    with served_app(tmp_path) as (demo, _):
        files, moved = demo.mnist_gan_page.files, processing_utils.async_move_files_to_cache
        image = next(block for block in demo.blocks.values() if isinstance(block, gr.Image))
        checked = []
        real_check = utils.is_in_or_equal
        monkeypatch.setattr(utils, "is_in_or_equal", lambda *paths: checked.append(paths) or real_check(*paths))

        def file(path: str) -> dict:
            return {"path": path, "meta": {"_type": "gradio.FileData"}}

        ours = [files.png(np.full((28, 28), shade, np.uint8)) for shade in (0, 255)]
        gallery = [{"image": file(path), "caption": str(i)} for i, path in enumerate(ours)]  # nested, as a gallery's
        fast = asyncio.run(moved(gallery, image, postprocess=True))
        assert not checked and {item["image"]["path"] for item in fast} <= image.temp_files
        assert fast == asyncio.run(moved.gradios(gallery, image, postprocess=True)) and checked  # gradio's own answer
        assert fast[0]["image"]["url"] == "/gradio_api/file=" + ours[0]
        others = [tmp_path / "digit.png", tmp_path / Path(ours[0]).name]  # not in the results folder
        for other in others:
            other.write_bytes(Path(ours[0]).read_bytes())
            checked.clear()
            answer = asyncio.run(moved(file(str(other)), image, postprocess=True))
            assert checked and answer == asyncio.run(moved.gradios(file(str(other)), image, postprocess=True))
        plot, walked = demo.fns[stream_index(demo)].fn.__self__._curve_plots[0][0], []
        walk = client_utils.async_traverse

        async def walking(data, *args):
            walked.append(data)
            return await walk(data, *args)

        monkeypatch.setattr(client_utils, "async_traverse", walking)
        rows = [{"step": 10 * i, "d_acc_real": 0.5, "d_acc_fake": 0.25} for i in range(1, 301)]
        points = plot_value(plot, train.long_rows(rows, train.ACCURACY))
        assert asyncio.run(moved(points, plot, postprocess=True)) is points and walked == []
        assert points == asyncio.run(moved.gradios(points, plot, postprocess=True))  # gradio's answer: a copy,
        assert walked[0] is points and len(walked) > 4 * len(points["data"])  # each point and number walked


def test_an_events_quick_steps_take_no_worker_thread_and_give_what_gradios_threads_give(tmp_path, monkeypatch):
    """Gradio runs each output's postprocess in a worker thread, one after another, and a gallery's in a thread
    pool of its own: a spot-the-fake answer's outputs and the Train form's are now made where the event runs, and
    are what gradio's threads made of them. An output that needs a thread (an image drawn from an array) still
    gets one: any other file, say."""
    import concurrent.futures

    import gradio as gr
    import numpy as np
    from gradio import blocks
    from gradio.components import gallery as gallery_module
    from gradio.state_holder import SessionState

    from ui import gradio_glue

    with built_app(tmp_path) as demo:
        files = demo.mnist_gan_page.files
        paths = [files.png(np.full((28, 28), shade, np.uint8)) for shade in (0, 128, 255)]
        fn = {f.fn.__name__: f for f in demo.fns.values() if f.fn}
        answer = [None, [(path, f"caption {i}") for i, path in enumerate(paths)], "You got **3 of 3** right",
                  "Fooled 1 in 2", gr.update(interactive=False)]
        example = {gr.Number: 3, gr.Checkbox: True, gr.Slider: 0.5, gr.Textbox: "x"}
        form = [block.choices[-1][1] if type(block) in (gr.Dropdown, gr.Radio) else example[type(block)]
                for block in fn["form_of_run"].outputs]  # the Train form, as a reload shows a run's settings
        rows = [{"step": 10 * i, "d_acc_real": 0.5, "d_acc_fake": 0.25, "d_loss": 0.7, "g_loss": 1.5}
                for i in range(99)]
        curves = [gradio_glue.plot_value(plot, train.long_rows(rows, series))
                  for plot, series in fn["curves"].fn.__self__._curve_plots]
        hops = []
        threads = blocks.anyio.to_thread._to_thread

        class Counted:
            async def run_sync(self, step, *args, **options):
                hops.append(step)
                return await threads.run_sync(step, *args, **options)

        def outputs(event, predictions) -> list:
            return asyncio.run(demo.postprocess_data(event, predictions, SessionState(demo)))

        monkeypatch.setattr(blocks.anyio.to_thread, "_to_thread", Counted())
        events = (("_answer", answer), ("form_of_run", form), ("curves", curves))
        quick = {name: outputs(fn[name], values) for name, values in events}
        assert hops == []
        image = next(block for block in demo.blocks.values() if type(block) is gr.Image)
        other = tmp_path / "digit.png"  # not one of the app's results: gradio checks it, in a thread
        other.write_bytes(Path(paths[0]).read_bytes())
        made = asyncio.run(blocks.anyio.to_thread.run_sync(image.postprocess, str(other)))
        assert hops == [image.postprocess] and made == image.postprocess(str(other))
        assert gradio_glue._quick_step(image.postprocess, (paths[0],))() == image.postprocess(paths[0])

        monkeypatch.setattr(blocks, "anyio", blocks.anyio._anyio)  # gradio's own way: threads and a thread pool
        monkeypatch.setattr(gallery_module, "ThreadPoolExecutor", concurrent.futures.ThreadPoolExecutor)
        assert quick == {name: outputs(fn[name], values) for name, values in events}
        assert quick["_answer"][1][2]["caption"] == "caption 2" and 3 in quick["form_of_run"]
        assert quick["curves"][0]["data"][-1] == [980, train.ACCURACY["d_acc_fake"], 0.25]


def test_an_events_skipped_outputs_build_no_component_and_reach_the_page_as_gradio_sends_them(tmp_path,
                                                                                             monkeypatch):
    """gr.skip() is an update with nothing in it, and gradio 6.31 built a component for each, a copy of the one
    before: each update of a page's stream skips most of its outputs. Now a skip builds nothing, and the page gets
    what gradio sent it; an update with something in it still builds its component."""
    import gradio as gr
    from gradio.blocks import Block, Blocks
    from gradio.state_holder import SessionState

    with built_app(tmp_path) as demo:
        stream = demo.fns[stream_index(demo)]
        tab = stream.fn.__self__
        first = tab.tick({}, None)
        again = list(tab.tick(first[-1], None))  # nothing changed since: skips
        skips = [i for i, value in enumerate(again) if value == gr.skip() and not stream.outputs[i].stateful]
        assert len(skips) >= 10
        built, init = [], Block.__init__

        def counted(self, *args, **options):
            built.append(self)  # once for each class of its chain that is a Block (an HTML: twice)
            init(self, *args, **options)

        monkeypatch.setattr(Block, "__init__", counted)

        def outputs(postprocess, predictions) -> list:
            return asyncio.run(postprocess(demo, stream, list(predictions), SessionState(demo)))

        ours = outputs(Blocks.postprocess_data, again)
        assert built == [] and all(ours[i]["__type__"] == "update" and "value" not in ours[i] for i in skips)
        assert ours == outputs(Blocks.postprocess_data.gradios, again) and len({id(b) for b in built}) == len(skips)
        built.clear()
        scrub = stream.outputs.index(tab._scrub)
        again[scrub] = gr.update(maximum=5, interactive=True)
        ours = outputs(Blocks.postprocess_data, again)
        assert [type(b) for b in built] == [gr.Slider]
        assert ours[scrub]["maximum"] == 5 and ours[scrub]["interactive"] is True


def test_a_components_update_builds_it_once_for_every_session_that_asks(tmp_path, monkeypatch):
    """gradio 6.31 builds a new component for each gr.update, in each session: a page load's sliders, buttons and
    menus anew for every page. The same update with the same arguments now shares one component among sessions,
    and each page gets what gradio sends; another update, or a session not updated, keeps its own."""
    import gradio as gr
    from gradio.blocks import Block, Blocks
    from gradio.state_holder import SessionState

    from ui import gradio_glue

    monkeypatch.setattr(gradio_glue, "_BUILT", gradio_glue.OrderedDict())
    with built_app(tmp_path) as demo:
        stream = demo.fns[stream_index(demo)]
        tab = stream.fn.__self__
        first = tab.tick({}, None)
        again = list(tab.tick(first[-1], None))
        scrub = stream.outputs.index(tab._scrub)
        slider = stream.outputs[scrub]
        again[scrub] = gr.update(maximum=5, interactive=True, label=None)  # a None is left out, as gradio does
        built, init = [], Block.__init__

        def counted(self, *args, **options):
            built.append(self)
            init(self, *args, **options)

        monkeypatch.setattr(Block, "__init__", counted)

        def outputs(postprocess, state, predictions) -> list:
            return asyncio.run(postprocess(demo, stream, list(predictions), state))

        first_page, second_page, untouched = SessionState(demo), SessionState(demo), SessionState(demo)
        ours = outputs(Blocks.postprocess_data, first_page, again)
        assert [type(b) for b in built] == [gr.Slider] and ours[scrub]["maximum"] == 5
        assert outputs(Blocks.postprocess_data, second_page, again) == ours and len(built) == 1  # none built
        assert first_page[slider._id] is second_page[slider._id] is built[0]
        assert built[0].maximum == 5 and built[0].interactive is True and built[0].label == slider.label
        assert second_page.config_values[slider._id]["props"]["maximum"] == 5
        assert untouched[slider._id] is slider and untouched.config_values[slider._id]["props"]["maximum"] != 5
        assert outputs(Blocks.postprocess_data.gradios, SessionState(demo), again) == ours  # gradio's own answer
        built.clear()
        again[scrub] = gr.update(maximum=6)
        assert outputs(Blocks.postprocess_data, second_page, again)[scrub]["maximum"] == 6
        assert [type(b) for b in built] == [gr.Slider] and first_page[slider._id].maximum == 5
    assert gradio_glue._plain([True, 1, 1.0, "1", None]) != gradio_glue._plain([1, 1, 1, "1", None])
    assert gradio_glue._plain({"choices": [("a", 1)]}) != gradio_glue._plain({"choices": [["a", 1]]})
    assert gradio_glue._plain({"inputs": [object()]}) is None  # built anew, as before


def test_a_crowds_pages_are_updated_less_often_and_all_of_them_together_as_often_as_a_few(tmp_path, monkeypatch):
    """Each open page's stream counts itself while it runs; beyond PAGES_AT_FULL_RATE pages each is updated that
    much less often (its status every UPDATE_S times that, its plots every PLOT_EVERY_S times that)."""
    import dataclasses

    from mnist_gan.training.events import State

    with built_app(tmp_path) as demo:
        tab = demo.fns[stream_index(demo)].fn.__self__
        monkeypatch.setattr(train, "unread_messages", lambda demo, session: 0)  # pages that read what they get

        async def pages(count: int) -> list[float]:
            streams = [tab.stream(None) for _ in range(count)]
            for stream in streams:
                await anext(stream)  # its first update: the page as it is
            watching = tab.watching, tab.slower()
            for stream in streams:
                await stream.aclose()
            return [*watching, tab.watching]

        assert asyncio.run(pages(3)) == [3, 1.0, 0]
        assert asyncio.run(pages(train.PAGES_AT_FULL_RATE)) == [train.PAGES_AT_FULL_RATE, 1.0, 0]
        assert asyncio.run(pages(50)) == [50, 50 / train.PAGES_AT_FULL_RATE, 0]  # a class: every 5 s, not 2
        training = tab.page.service.training
        running = dataclasses.replace(training.status(), run="run-1", data="MNIST", state=State.RUNNING, step=1000,
                                      steps=10_000, history=[{"step": 1000, "d_loss": 0.7, "g_loss": 1.2}])
        monkeypatch.setattr(training, "status", lambda *args, **options: running)
        # curves last drawn 20 s ago at this step (a run that grew by less than PLOT_GROWTH since): redrawn after
        # PLOT_EVERY_S (10 s) for a few pages, after 25 s for a class of 50
        view = {"history": ("run-1", 990, 1), "plotted_at": time.monotonic() - 20, "plotted_step": 1000}
        tab.watching = 50
        assert tab.tick(dict(view), None)[1] == train.gr.skip()
        tab.watching = 3
        assert tab.tick(dict(view), None)[1] == ("run-1", 1000, 1)


def test_a_page_asks_for_the_quality_plots_only_once_the_run_has_evaluations(tmp_path, monkeypatch):
    """Each page's first update set off the quality plots' event, which drew two empty plots, hidden: now a run
    with no evaluation sends no key, and no event follows. With evaluations the plots are drawn and shown; a new
    run without any hides them again."""
    import dataclasses

    import gradio as gr

    with built_app(tmp_path) as demo:
        tab = next(f.fn.__self__ for f in demo.fns.values() if f.fn and f.fn.__name__ == "quality_plots")
        training, idle = tab.page.service.training, tab.page.service.training.status()
        evaluated = dataclasses.replace(idle, run="run-1", data="MNIST", quality=[{"step": 250, "cfid": 41.5}],
                                        class_histogram=[0.1] * 10)
        shown = {"status": idle}
        monkeypatch.setattr(training, "status", lambda *args, **options: shown["status"])
        first = tab.tick({}, None)
        assert isinstance(first[2], type(gr.skip())) and first[-1]["quality"] is None  # no key: no event
        shown["status"] = evaluated
        later = tab.tick(first[-1], None)
        assert later[2] == ("run-1", 1)
        quality, classes = tab.quality_plots()
        assert quality["visible"] and classes["visible"] and "41.5" in quality["title"]
        shown["status"] = dataclasses.replace(idle, run="run-2", data="MNIST")  # a new run, not evaluated yet
        assert tab.tick(later[-1], None)[2] is None  # the key goes, the plots follow
        assert [update["visible"] for update in tab.quality_plots()] == [False, False]


def test_the_app_names_gradios_cache_folder_once_and_an_update_finds_no_folder():
    """Gradio found its cache folder anew (a resolve(): system calls) for every component it made, one per gr.update
    an event returns. `python app.py` names the folder gradio would find, once, unless GRADIO_TEMP_DIR is set."""
    import subprocess

    script = """
import os, os.path, tempfile
from pathlib import Path
os.environ.pop("GRADIO_TEMP_DIR", None)
import gradio as gr
found, real = [], os.path.realpath
os.path.realpath = lambda *args, **options: found.append(args) or real(*args, **options)
gr.Slider(0, 10, render=False)
print(len(found), bool(found) and str(Path(found[-1][0])))
import app
found.clear()
gr.Slider(0, 10, render=False)
print(len(found), os.environ["GRADIO_TEMP_DIR"] == str((Path(tempfile.gettempdir()) / "gradio").resolve()))
"""
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = done.stdout.splitlines()[-2:]
    assert before.split()[0] != "0" and before.endswith("/gradio")  # gradio alone: a resolve() of <temp>/gradio
    assert after == "0 True"  # with the app: the same folder, named in GRADIO_TEMP_DIR, and nothing resolved


def test_where_pages_scrubbed_to_is_kept_for_a_bounded_number_of_pages(monkeypatch):
    """A page's stream forgets where it scrubbed when it ends; a page without one, or a script's many sessions,
    cannot pile them up: beyond the limit the oldest choice goes."""
    from ui.common import Scrubbed

    monkeypatch.setattr(Scrubbed, "LIMIT", 3)
    pages = Scrubbed()
    for page in "abcd":
        pages.record(page, "run", ord(page))
    assert list(pages) == ["b", "c", "d"]
    pages.record("b", "run", 1)  # a page that chose again is the newest
    pages.record("e", "run", 2)
    assert list(pages.items()) == [("d", ("run", ord("d"))), ("b", ("run", 1)), ("e", ("run", 2))]
    # it stays where it scrubbed as the run makes more, unless that was the end it saw, or another run
    assert pages.stays_at("b", "run", ("run", 5)) == 1 and pages.stays_at("e", "run", ("run", 3)) is None
    assert pages.stays_at("b", "new run", ("run", 5)) is None and pages.stays_at("b", "run", ("new run", 5)) is None
    assert pages.stays_at("b", "run", None) is None and pages.stays_at("z", "run", ("run", 5)) is None


def test_an_event_tries_no_import_of_matplotlib_that_is_not_there(tmp_path):
    """Gradio switched matplotlib's backend around each event, trying to import it twice (each a search of every
    folder of sys.path where it is not installed, as here); the app's events try none."""
    tried = []

    class Finder:  # the first place an import that is not in sys.modules asks
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name.partition(".")[0] == "matplotlib":
                tried.append(name)

    assert importlib.util.find_spec("matplotlib") is None  # what requirements.txt installs has none
    with served_app(tmp_path) as (demo, url), httpx.Client(timeout=60) as http:
        sys.meta_path.insert(0, Finder)
        try:
            assert rest_call(http, url, "generate", GENERATE)[0] == "complete"
        finally:
            sys.meta_path.remove(Finder)
    assert tried == []


def test_a_component_update_reads_its_arguments_from_a_kept_signature():
    """Each gr.update builds a component, and each __init__ of its class chain asked for its own arguments anew
    (inspect parsing the function each time); they keep their signature now, and the arguments are the same."""
    import inspect

    import gradio as gr

    from ui.gradio_glue import quick_component_updates

    quick_component_updates()  # as app.build does; again is harmless
    for cls in (gr.Button, gr.Dropdown, gr.Slider, gr.Image, gr.Gallery, gr.LinePlot, gr.Markdown,
                gr.components.Component):
        init = cls.__init__.__wrapped__  # its own or the nearest in its class chain
        code = init.__code__
        assert "__signature__" in init.__dict__, cls
        assert inspect.getfullargspec(init).args == list(code.co_varnames[:code.co_argcount]), cls
        assert inspect.getfullargspec(init).kwonlyargs == \
            list(code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]), cls
    update = gr.Dropdown(**{**gr.Dropdown(["a"], render=False).constructor_args, "choices": ["a", "b"],
                            "render": False})
    assert update.choices == [("a", "a"), ("b", "b")]


def test_the_queue_sleeps_until_an_event_joins_ends_or_reports_progress(monkeypatch):
    """Gradio's queue looked for work every 1 ms (some 900 wake-ups a second of an idle server); woken_queue's
    loops sleep until an event joins, one ends (a group at its concurrency limit then takes its next), or a
    progress report comes. The fallback is set to 10 minutes here: a wake-up missed would leave an event waiting
    past the bounds below."""
    import gradio as gr
    from gradio import queueing

    from testing.system import free_port
    from ui import gradio_glue

    monkeypatch.setattr(gradio_glue, "WAKE_FALLBACK_S", 600.0)
    looks = Counter()
    length = queueing.Queue.__len__
    monkeypatch.setattr(queueing.Queue, "__len__", lambda self: looks.update(["len"]) or length(self))
    gate = threading.Event()

    def held(text):
        gate.wait(60)
        return text

    def reported(text, progress=gr.Progress()):  # noqa: B008  (how gradio is told to track progress)
        for _ in progress.tqdm(range(3)):
            time.sleep(0.3)
        return text

    with gr.Blocks() as demo:
        box, out = gr.Textbox(), gr.Textbox()
        gr.Button().click(held, box, out, concurrency_limit=1, api_name="held")
        gr.Button().click(reported, box, out, api_name="reported")
    gradio_glue.woken_queue(demo)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        url = demo.local_url
        time.sleep(1.0)
        before = looks["len"]
        time.sleep(2.0)
        assert looks["len"] - before <= 4, looks  # gradio's own loop: ~1,800 looks in these 2 s

        async def call(http, name: str, session: str) -> list[dict]:
            joined = await http.post(url + "gradio_api/queue/join",
                                     json={"data": [name], "fn_index": fn[name], "session_hash": session})
            assert joined.status_code == 200, joined.text
            messages = []
            async with http.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}) as sse:
                async for line in sse.aiter_lines():
                    if line.startswith("data: "):
                        messages.append(json.loads(line[6:]))
                        if messages[-1]["msg"] in ("process_completed", "close_stream"):
                            return messages
            return messages

        fn = {demo.fns[i].api_name: i for i in demo.fns}

        async def scenario():
            async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as http:
                first = asyncio.create_task(call(http, "held", "a"))
                second = asyncio.create_task(call(http, "held", "b"))  # waits: the group's one slot is taken
                await asyncio.sleep(1.0)
                assert not second.done()
                gate.set()  # the first ends: the second is taken at once, not after the fallback
                done = await asyncio.wait_for(asyncio.gather(first, second), 30)
                progressed = await asyncio.wait_for(call(http, "reported", "c"), 30)
                return done, progressed

        (first, second), progressed = asyncio.run(scenario())
        for messages in (first, second, progressed):
            assert messages[-1]["msg"] == "process_completed" and messages[-1]["success"], messages[-1]
        assert [m["msg"] for m in progressed].count("progress") >= 2, [m["msg"] for m in progressed]
    finally:
        gate.set()
        demo.close()
