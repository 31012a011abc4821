"""The Train tab's laboratory through the launched app: gradio_client for the endpoints, Chromium for the page."""

import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from testing.app import rest_call, wait_for
from testing.browser import browser, wait_for_grid, wait_for_text
from testing.system import wait_until

SHOTS = Path(__file__).resolve().parent / "screenshots"
RUN = dict(architecture="classic", batch_size=16, steps=5000, data="sample", recipe="classic", ema_decay=0.9)


@pytest.fixture(scope="module")
def client(app_server, tmp_path_factory):
    _, url = app_server
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("lab")))


def stopped(client) -> dict:
    status = client.predict(api_name="/train_status")
    if status["state"] in ("starting", "running", "pausing", "paused", "resuming"):
        client.predict(api_name="/train_stop")
    return wait_for(client, lambda s: s["state"] in ("idle", "stopped", "finished", "failed"), 600, "the stop")


def served_files(url: str, endpoint: str, data: list) -> list[bytes]:
    """The first bytes of each picture `endpoint` answers with, fetched by URL as a remote client does (these once
    answered with a bare path on the server, which a remote client cannot open)."""
    with httpx.Client(timeout=120) as http:
        kind, outputs = rest_call(http, url, endpoint, data)
        assert kind == "complete", outputs
        pictures = [o for o in outputs if isinstance(o, dict) and "url" in o]
        assert not any(isinstance(o, str) for o in outputs), outputs
        assert all(p["url"].startswith(url + "gradio_api/file=") for p in pictures), pictures
        return [http.get(p["url"]).raise_for_status().content[:len(b"GIF89a" if p["url"].endswith(".gif") else
                                                                    b"\x89PNG")] for p in pictures]


@pytest.mark.slow
def test_steps_by_hand_live_edits_fork_compare_and_atlas(client):
    stopped(client)
    run = client.predict(**RUN, api_name="/train_start")["run"]
    try:
        wait_for(client, lambda s: s["step"] >= 30, 600, "30 steps")
        with pytest.raises(AppError, match="cannot take a step \\(d\\): the run is running"):
            client.predict(kind="d", api_name="/train_step_once")
        edited = client.predict(lr_d=1e-4, api_name="/train_set")
        assert edited["state"] == "running"
        status = wait_for(client, lambda s: s["edits"], 600, "the edit to take effect")
        edit = status["edits"][0]
        assert edit["changes"] == {"lr_d": 1e-4} and edit["before"] == {"lr_d": 2e-4} and edit["step"] >= 30
        assert status["config"]["lr_d"] == 1e-4
        with pytest.raises(AppError, match="nothing to change: give lr_g, lr_d, d_steps or ema_decay a new value"):
            client.predict(api_name="/train_set")
        with pytest.raises(AppError, match="d_steps: must be between 1 and 10"):
            client.predict(d_steps=0, api_name="/train_set")
    except BaseException:
        stopped(client)
        raise
    try:
        wait_for(client, lambda s: s["atlas_steps"], 600, "the first sample step's atlas")
        client.predict(api_name="/train_pause")
        paused = wait_for(client, lambda s: s["state"] == "paused", 600, "the pause")
        for kind, advance in (("d", 1), ("g", 1), ("iteration", 1), ("10", 10)):
            before = client.predict(api_name="/train_status")["step"]
            client.predict(kind=kind, api_name="/train_step_once")
            status = wait_for(client, lambda s: len(s["inspections"]) and s["inspections"][-1]["kind"] == kind
                              and s["step"] == before + advance, 60, f"the {kind} step")
            assert status["history"][-1]["manual"] == kind and status["state"] == "paused"
        summary, picture = client.predict(api_name="/train_inspection")
        assert summary["kind"] == "10" and summary["summary"]["score_before"] != summary["summary"]["score_after"]
        with Image.open(picture) as image:
            assert image.format == "PNG" and image.size[0] > 200
        assert served_files(client.src, "train_inspection", []) == [b"\x89PNG"]
        assert client.predict(api_name="/train_status")["step"] == paused["step"] + 13
        with pytest.raises(AppError, match="a step by hand is one of"):
            client.predict(kind="sideways", api_name="/train_step_once")

        meta, atlas = client.predict(run="", step=None, api_name="/atlas")
        assert meta["step"] > 0 and np.asarray(Image.open(atlas)).ndim == 3
        client.predict(api_name="/train_stop")
        wait_for(client, lambda s: s["state"] == "stopped", 600, "the stop")

        [listed] = [r for r in client.predict(api_name="/runs_list") if r["run"] == run]
        fork_step = listed["fork_steps"][0]
        forked = client.predict(run=run, step=fork_step, lr_g=1e-4, api_name="/train_fork")
        assert forked["origin"] == {"run": run, "step": fork_step, "changes": {"lr_g": 1e-4}}
        assert forked["config"]["lr_g"] == 1e-4 and forked["step"] == fork_step
        wait_for(client, lambda s: s["state"] == "running" and s["step"] > fork_step, 600, "the fork training")
        client.predict(api_name="/train_stop")
        wait_for(client, lambda s: s["state"] == "stopped", 600, "the fork's stop")
        summary, grids = client.predict(runs=[run, forked["run"]], step=fork_step, api_name="/runs_compare")
        assert [r["run"] for r in summary["runs"]] == [run, forked["run"]]
        assert summary["runs"][1]["origin"]["run"] == run
        assert np.asarray(Image.open(grids)).shape[1] > 2 * np.asarray(Image.open(grids)).shape[0] * 0.9
        with pytest.raises(AppError, match="compare 2 to 4 different runs"):
            client.predict(runs=[run], step=None, api_name="/runs_compare")
        assert served_files(client.src, "runs_compare", [[run, forked["run"]], fork_step]) == [b"\x89PNG"]
        assert served_files(client.src, "atlas", [run, None]) == [b"\x89PNG"]
        assert served_files(client.src, "atlas_gif", [run]) == [b"GIF89a"]
    finally:
        stopped(client)


def test_visitors_of_a_space_may_look_but_not_change(client, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "alice/demo")  # read by the app at each call: a Space, no admins: closed
    for endpoint, kwargs in (("/train_step_once", {"kind": "d"}), ("/train_set", {"lr_d": 1e-4}),
                             ("/train_fork", {"run": "x", "step": None})):
        with pytest.raises(AppError, match="closed on this Space"):
            client.predict(api_name=endpoint, **kwargs)
    assert isinstance(client.predict(api_name="/runs_list"), list)  # looking is open


@pytest.mark.browser
def test_the_laboratory_in_the_browser(app_server, client):
    """Pause a run, take a D step and ten iterations by hand, edit a learning rate live, fork, and compare."""
    _, url = app_server
    stopped(client)
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_for_grid(page)
        page.get_by_role("tab", name="Train").click()
        page.locator("#data").get_by_text("bundled sample").click()
        page.locator("#train-steps input").fill("4000")
        page.locator("#train-lr-d input").fill("0.0002")  # the form shows the last run's settings, edited by the test above
        page.locator("#train-batch-size input").fill("16")
        page.locator("#start").click()
        wait_for_text(page, "#status", r"running[\s\S]*step [1-9]\d", 180)
        # the live fields show the run's settings once its first status arrives; edit after that, not before
        live = page.locator("#live-lr-d input")
        wait_until(lambda: live.input_value() == "0.0002", 600, "the run's live settings",
                   describe=lambda: f"it shows {live.input_value()!r}")
        page.locator("#live-lr-d input").fill("0.0001")
        page.locator("#apply-live").click()
        wait_for_text(page, "#status", r"lr_d 0.0002 → 0.0001", 60)
        wait_for(client, lambda s: s["atlas_steps"], 600, "the first sample step's atlas")
        page.locator("#pause").click()
        wait_for_text(page, "#status", r"^paused", 60)
        wait_until(lambda: page.locator("#step-d").is_enabled(), 30, "the step buttons")
        page.locator("#step-d").click()
        wait_for_text(page, "#inspection", r"D step", 60)
        page.locator("#step-10").click()
        wait_for_text(page, "#inspection", r"10 iterations", 60)
        assert page.locator("#evidence img").count() == 1
        SHOTS.mkdir(exist_ok=True)
        page.locator("#lab").screenshot(path=str(SHOTS / "6-lab-step-by-hand.png"))
        page.locator("#stop").click()
        wait_for_text(page, "#status", r"stopped", 60)
        run = re.search(r"\d{8}-\d{6}-classic\S*", page.locator("#status").inner_text()).group(0)
        page.get_by_text("Latent atlas").click()
        wait_until(lambda: page.locator("#atlas img").count() == 1, 30, "the atlas")
        page.locator("#atlas-panel").screenshot(path=str(SHOTS / "7-latent-atlas.png"))
        page.get_by_text("Fork and compare").click()
        wait_until(lambda: run in page.locator("#fork-run").inner_text() or
                   page.locator("#fork-run input").input_value() == run, 30, "the run in the fork picker")
        page.locator("#fork").click()
        wait_for_text(page, "#status", rf"Forked from {re.escape(run)} at step", 120)
        wait_for_text(page, "#status", r"running", 120)
        page.locator("#stop").click()
        wait_for_text(page, "#status", r"stopped", 60)
        fork = re.search(r"\S+-fork\d+\S*", page.locator("#status").inner_text()).group(0)
        client.predict(runs=[run, fork], step=None, api_name="/runs_compare")  # the endpoint answers
        for name in (run, fork):  # the multiselect closes after each pick: open it for each
            page.locator("#compare-runs input").click()
            page.get_by_role("option", name=name, exact=True).click()
        page.locator("#compare").click()
        wait_until(lambda: page.locator("#compare-grids img").count() == 1, 60, "the comparison")
        page.locator("#fork-panel").screenshot(path=str(SHOTS / "8-fork-and-compare.png"))
        # the run picker shows the newest run (the fork); picking the first shows the first's steps
        steps = {r["run"]: r["fork_steps"] for r in client.predict(api_name="/runs_list")}
        assert steps[run][-1] != steps[fork][-1], steps  # else the pick would show nothing new
        page.locator("#fork-run input").click()
        page.get_by_role("option", name=run, exact=True).click()
        latest = f"{steps[run][-1]:,}"
        wait_until(lambda: page.locator("#fork-step input").input_value() == latest, 30, "the run's steps",
                   describe=lambda: f"it shows {page.locator('#fork-step input').input_value()!r}, not {latest!r}")
        page.screenshot(path=str(SHOTS / "9-train-lab-full.png"), full_page=True)
