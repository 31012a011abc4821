"""MCP: a tool call to `generate` (64 images) through the official `mcp` client, beside the raw REST path, same run.

The app runs as `python app.py` in its own process. Both clients run in one asyncio loop of this process, so each
pays the same for being scheduled: the MCP client keeps one session open (as an agent does) and gets the PNG inside
the answer; the REST path is POST /gradio_api/call/generate, the SSE result, then a GET of the PNG it names, so both
end with the picture's bytes in hand (the REST path without that GET is measured too). The kinds alternate call by
call (their order swapped every call), each call a new seed, so the machine's load reaches all alike.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench.appserver import App, met
from testing.app import GENERATE
from testing.mcp import mcp_url
from testing.system import summary

SESSION = "bench-mcp-client"


def measure(rounds: int = 5, calls: int = 100, warmup: int = 10) -> list[dict]:
    with App() as app:
        app.wait_ready()
        timed = asyncio.run(asyncio.wait_for(_timed(app.url, calls, warmup), 60 + 5 * calls))
    ratio = statistics.median(timed["mcp"]) / statistics.median(timed["rest"])
    return [
        {"what": "generate, 64 images, MCP tool call (open session, PNG in the answer)", **summary(timed["mcp"])},
        {"what": "the same, the client sending a progress token", **summary(timed["progress"])},
        {"what": "generate, 64 images, REST path + GET of the PNG (one session)", **summary(timed["rest"])},
        {"what": "REST path alone (the PNG not fetched)", **summary(timed["bare"])},
        {"what": "MCP / REST with the PNG (medians)", "median ms": f"{ratio:.2f}x", "target": "<= 2x",
         "met": met(ratio <= 2)},
    ]


async def _timed(url: str, calls: int, warmup: int) -> dict[str, list[float]]:
    model, _, n, digit, temperature = GENERATE
    async with httpx.AsyncClient(timeout=120) as http, \
            streamable_http_client(mcp_url(url)) as (read, write, _), ClientSession(read, write) as mcp:
        await mcp.initialize()

        async def noted(*_):
            pass

        async def by_mcp(seed: int, progress: bool = False) -> float:
            start = time.perf_counter()
            answer = await mcp.call_tool("generate", {"model": model, "seed": seed, "n": n, "digit": digit,
                                                      "temperature": temperature},
                                         progress_callback=noted if progress else None)
            [png] = [base64.b64decode(c.data) for c in answer.content if c.type == "image"]
            seconds = time.perf_counter() - start
            assert png.startswith(b"\x89PNG"), answer
            return seconds

        async def by_rest(seed: int, fetch: bool = True) -> float:
            start = time.perf_counter()
            call = f"{url}gradio_api/call/generate"
            joined = await http.post(call, json={"data": [model, seed, n, digit, temperature],
                                                 "session_hash": SESSION})
            outputs, kind = None, None
            async with http.stream("GET", f"{call}/{joined.json()['event_id']}") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "complete":
                        outputs = json.loads(line[5:])
                        break
            assert outputs, kind
            if fetch:
                assert (await http.get(outputs[0]["url"])).content.startswith(b"\x89PNG")
            return time.perf_counter() - start

        for seed in range(warmup):
            await by_mcp(50_000 + seed), await by_mcp(51_000 + seed, True)
            await by_rest(52_000 + seed), await by_rest(53_000 + seed, False)
        timed = {"mcp": [], "progress": [], "rest": [], "bare": []}
        for seed in range(calls):  # alternating, the order swapped every call
            pair = [("mcp", by_mcp(seed)), ("rest", by_rest(10_000 + seed))]
            for name, call in pair if seed % 2 else pair[::-1]:
                timed[name].append(await call)
            if seed % 5 == 0:  # fewer of these: what the REST figure holds, and the progress-token path
                timed["progress"].append(await by_mcp(20_000 + seed, progress=True))
                timed["bare"].append(await by_rest(30_000 + seed, fetch=False))
    return timed
