"""The app as an MCP server, through the official `mcp` client over streamable HTTP: the tools (named, described,
typed like the API), their answers (the REST path's pixels, the package's numbers, images as image content, never a
server path), the resources, the request limits, and a Space's rules for anonymous callers."""

import asyncio
import dataclasses
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from mcp.shared.exceptions import McpError
from PIL import Image

from mnist_gan.data import load_mnist
from mnist_gan.images import to_uint8
from mnist_gan.training.events import State
from mnist_gan.training.run_state import RunStatus
from testing.app import ROOT, AppProcess, rest_call, served_app
from testing.mcp import McpClient, data_url, images, pixels, report, texts
from testing.models import TINY, WITH_D, without_d
from ui.agents import MODEL_URI, RUN_URI, serve_mcp, status_text

TOOLS = {"generate", "latent", "latent_directions", "interpolate", "models", "discriminate", "invert", "d_pull",
         "z_pull", "style_grid", "morph", "train_start", "train_pause", "train_resume", "train_stop",
         "train_resume_run", "train_status", "train_gif", "train_step_once", "train_set", "train_fork",
         "train_inspection", "runs_list", "runs_compare", "atlas", "atlas_gif", "push", "pull"}
NOT_TOOLS = {"spot_round", "spot_answer", "model_card", "run_status"}  # a game for people; the two resources
# Every tool that changes the server or spends the owner's credentials, with arguments that pass its checks
CHANGING = {"train_start": {"data": "sample", "steps": 100}, "train_pause": {}, "train_resume": {},
            "train_stop": {}, "train_resume_run": {}, "train_step_once": {"kind": "d"}, "train_set": {"lr_g": 1e-4},
            "train_fork": {"run": "any"}, "push": {"model": "classic", "repo_id": "alice/mcp", "token": "hf_x" * 8},
            "pull": {"repo_id": "alice/mcp"}}
UPLOADS_PER_MINUTE = 30  # a Space's own limit (ui/limits.py), set for this module's app
OWNER_ONLY = "is reserved to this Space's owners: sign in with Hugging Face"
answers: list[str] = []  # every text any tool gave in this module, searched for server paths at the end


@pytest.fixture(scope="module")
def uploads_limited():
    """This module's app limits uploads per client as a Space does (a local app does not unless told to)."""
    os.environ["MNIST_GAN_UPLOADS_PER_MINUTE"] = str(UPLOADS_PER_MINUTE)
    yield
    os.environ.pop("MNIST_GAN_UPLOADS_PER_MINUTE", None)


@pytest.fixture(scope="module")
def app(uploads_limited, app_server):
    """(the page, its URL, an MCP session to it)."""
    page, url = app_server
    with McpClient(url) as mcp:
        yield page, url, mcp


def call(mcp: McpClient, name: str, arguments: dict | None = None, progress: bool | list = False):
    result = mcp.call(name, arguments, progress)
    answers.extend(texts(result))
    return result


@pytest.fixture(scope="module")
def held_out():
    """Two MNIST test digits from the bundled sample (held out from every model), as uint8 28x28."""
    data = load_mnist(TINY)
    return to_uint8(data.x_test[:2])


def rest_png(url: str, endpoint: str, data: list) -> np.ndarray:
    """An image endpoint's PNG through the raw REST path (its file fetched as a browser would)."""
    with httpx.Client(timeout=120) as http:
        kind, value = rest_call(http, url, endpoint, data)
        assert kind == "complete", value
        return pixels(http.get(value[0]["url"]).content)


def test_mcp_is_on_unless_the_environment_says_0_or_its_package_is_missing(monkeypatch):
    assert serve_mcp({}) and serve_mcp({"MNIST_GAN_MCP": "1"}) and not serve_mcp({"MNIST_GAN_MCP": "0"})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    assert not serve_mcp({})  # an environment installed before the pin: the app still starts, without MCP


def test_every_tool_is_listed_described_and_typed_like_the_api(app):
    _, url, mcp = app
    tools = {tool.name: tool for tool in mcp.tools()}
    assert set(tools) == TOOLS and not NOT_TOOLS & set(tools)
    assert mcp.server_name == "mnist-gan"
    api = Client(url, verbose=False, analytics_enabled=False).view_api(print_info=False, return_format="dict")
    for name, tool in tools.items():
        parameters = [p["parameter_name"] for p in api["named_endpoints"][f"/{name}"]["parameters"]]
        properties = tool.inputSchema["properties"]
        assert list(properties) == parameters, name
        assert len(tool.description) > 60 and "Returns:" in tool.description, name
        for parameter, schema in properties.items():
            assert schema.get("description") and ("type" in schema or "oneOf" in schema), f"{name}.{parameter}"
        assert not re.search(r"hf_[A-Za-z0-9]{8}|/tmp/|/home/|/root/", tool.description + str(tool.inputSchema))
    # the model picker's choices at launch are not an enum (a model trained later is a model too), nor is a
    # list parameter a schema the server refuses
    assert tools["generate"].inputSchema["properties"]["model"] == {
        "type": "string", "description": tools["generate"].inputSchema["properties"]["model"]["description"],
        "default": "mlp-uncond"}
    assert tools["latent"].inputSchema["properties"]["amounts"]["items"] == {"type": "number"}
    assert tools["discriminate"].inputSchema["properties"]["image"]["type"] == "string"
    assert "data URL" in tools["discriminate"].description


def test_generate_gives_the_rest_paths_pixels_as_image_content(app):
    page, url, mcp = app
    settings = {"model": "classic", "seed": 7, "n": 64, "digit": "all digits", "temperature": 1.0}
    result = call(mcp, "generate", settings)
    assert not result.isError and [c.type for c in result.content] == ["image"]
    [(kind, png)] = images(result)
    assert kind == "image/png"
    rest = rest_png(url, "generate", list(settings.values()))
    np.testing.assert_array_equal(pixels(png), rest)
    np.testing.assert_array_equal(pixels(png), page.service.drawing.generate(**settings))  # the package's own


@pytest.mark.parametrize("model", WITH_D)
def test_discriminate_judges_a_held_out_digit_and_noise_as_the_package_does(app, held_out, model, tmp_path):
    page, _, mcp = app
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    scores = {}
    for name, picture in (("held-out", held_out[0]), ("noise", noise)):
        result = call(mcp, "discriminate", {"model": model, "image": data_url(picture)})
        assert not result.isError, texts(result)
        got = report(result)
        Image.fromarray(picture).save(tmp_path / f"{name}.png")
        expected = page.service.inside.discriminate(model, str(tmp_path / f"{name}.png")).report
        assert got["score"] == pytest.approx(expected["score"], abs=1e-5)
        assert got["says_real"] == expected["says_real"] and got["real_below"] == expected["real_below"]
        shown = images(result)  # the heatmap, the 28x28 D saw, the histogram: one content each
        assert [kind for kind, _ in shown] == ["image/png"] * 3 and all(pixels(png).size for _, png in shown)
        scores[name] = got["score"]
    assert scores["held-out"] > scores["noise"]  # a real digit looks realer to D than noise does


def test_calls_at_once_each_get_their_own_answer(app):
    page, _, mcp = app
    seeds = range(100, 108)

    async def at_once():
        return await asyncio.gather(*[mcp.session.call_tool("generate", {"model": "classic", "seed": seed, "n": 4})
                                      for seed in seeds])

    for seed, result in zip(seeds, mcp.run(at_once())):
        [(_, png)] = images(result)
        np.testing.assert_array_equal(pixels(png), page.service.drawing.generate("classic", seed, 4))


def test_several_outputs_come_apart_with_or_without_a_progress_token(app, held_out):
    _, _, mcp = app
    arguments, news = {"model": "classic", "image": data_url(held_out[1])}, []
    plain, tracked = call(mcp, "discriminate", arguments), call(mcp, "discriminate", arguments, progress=news)
    for result in (plain, tracked):
        assert [c.type for c in result.content] == ["text", "image", "image", "image"]
    assert report(plain) == report(tracked)
    assert "Processing." in news  # the queue's news, as progress notifications


def test_invert_finds_a_held_out_digit_and_its_path_stays_animated(app, held_out):
    _, _, mcp = app
    result = call(mcp, "invert", {"model": "mlp-cond", "image": data_url(held_out[0]), "restarts": 2})
    assert not result.isError, texts(result)
    found = report(result)
    assert len(found["z"]) == 100 and 0 <= found["digit"] <= 9 and 0 <= found["error"] < 0.25
    (png, reconstruction), (gif, path), (_, nearest) = images(result)
    assert (png, gif) == ("image/png", "image/gif")
    with Image.open(io.BytesIO(path)) as animation:
        assert animation.n_frames > 1  # the file's own bytes: gradio's re-encoding kept one frame
    assert pixels(reconstruction).shape == pixels(nearest).shape


def test_a_list_parameter_and_a_model_added_after_launch_are_accepted(app, tmp_path):
    page, _, mcp = app
    result = call(mcp, "latent", {"model": "classic", "seed": 3, "digit": "0", "mode": "raw", "amounts": [1.5, -2]})
    assert not result.isError and images(result)[0][0] == "image/png"
    added = without_d(page.service.library, tmp_path)
    result = call(mcp, "generate", {"model": added, "seed": 1, "n": 4, "digit": "all digits", "temperature": 1.0})
    assert not result.isError, texts(result)


def test_mistakes_come_back_as_plain_messages(app):
    _, _, mcp = app
    cases = [("generate", {"model": "no-such-model", "seed": 1, "n": 4}, "unknown model 'no-such-model'"),
             ("generate", {"model": "classic", "seed": 1, "n": 1000}, "grid size"),
             ("discriminate", {"model": "classic", "image": "/etc/passwd"}, "data URL"),
             ("discriminate", {"model": "classic", "image": "https://example.com/seven.png"}, "data URL"),
             ("discriminate", {"model": "classic", "image": "data:image/png;base64,not base64!"}, "base64")]
    for name, arguments, message in cases:
        result = call(mcp, name, arguments)
        assert result.isError and message in texts(result)[0], texts(result)


def test_a_file_uploaded_to_the_app_can_be_named_by_its_url(app, held_out):
    _, url, mcp = app
    buffer = io.BytesIO()
    Image.fromarray(held_out[0]).save(buffer, format="PNG")
    uploaded = httpx.post(url + "gradio_api/upload", files={"files": ("seven.png", buffer.getvalue())}).json()[0]
    result = call(mcp, "discriminate", {"model": "classic", "image": f"{url}gradio_api/file={uploaded}"})
    assert not result.isError, texts(result)
    foreign = call(mcp, "discriminate", {"model": "classic", "image": f"{url}gradio_api/file=/etc/hostname"})
    assert foreign.isError and "not a file uploaded to this app" in texts(foreign)[0]


def test_resources_give_a_models_card_and_the_runs_status_as_text(app):
    _, _, mcp = app
    assert mcp.read(RUN_URI).startswith("No training run yet")
    card = mcp.read(MODEL_URI.format(name="classic"))
    assert card.startswith("# classic") and "cFID" in card and '"lr_g": 0.0002' in card
    assert "no-such-model" in mcp.read(MODEL_URI.format(name="no-such-model"))
    answers.extend([card])


def test_status_tools_answer_json(app):
    _, _, mcp = app
    status = report(call(mcp, "train_status"))
    assert status["state"] == "idle" and "run_dir" not in status
    models = report(call(mcp, "models"))
    assert [m["name"] for m in models][:1] == ["mlp-uncond"]


def test_an_oversized_request_is_refused_readably_and_the_session_goes_on(app):
    _, _, mcp = app
    noise = np.random.default_rng(1).integers(0, 256, (600, 600), dtype=np.uint8)  # ~480 kB as a data URL
    with pytest.raises(McpError, match="Refused"):  # as a JSON-RPC error, not an HTTP status that ends the session
        mcp.call("discriminate", {"model": "classic", "image": data_url(noise)})
    assert not call(mcp, "models").isError  # the same session still works


def test_mcp_images_do_not_spend_the_upload_limit(app, held_out):
    """Each image travels inside its (size-capped) MCP request, like the drawing pad's: more image calls than a
    client may upload files in a minute all answer."""
    _, _, mcp = app
    for i in range(UPLOADS_PER_MINUTE + 2):
        result = call(mcp, "discriminate", {"model": "classic", "image": data_url(held_out[i % 2])})
        assert not result.isError, (i, texts(result))


def test_a_spot_the_fake_round_called_by_name_answers_its_pictures_kept_in_memory(app):
    """A round's 16 pictures are never written to the disk (ResultFiles.pngs_once): the MCP answer reads them
    where they are, as images of their own."""
    page, _, mcp = app
    on_disk = set(page.files.folder.glob("*"))
    result = call(mcp, "spot_round", {"model": "classic"})
    shown = images(result)
    assert not result.isError and len(shown) == 16 and {kind for kind, _ in shown} == {"image/png"}
    assert all(pixels(png).shape == (112, 112) for _, png in shown)  # 28x28 digits, 4x
    assert set(page.files.folder.glob("*")) == on_disk  # none of them written


def test_no_answer_names_a_server_path(app, held_out):
    page, _, mcp = app
    picture = data_url(held_out[0])
    for name, arguments in [("generate", {"model": "mlp-cond", "seed": 2, "n": 10}), ("train_status", {}),
                            ("interpolate", {"model": "classic", "seed_a": 1, "seed_b": 2, "frames": 4}),
                            ("d_pull", {"model": "classic", "image": picture, "steps": 2}), ("runs_list", {}),
                            ("z_pull", {"model": "classic", "seed": 1, "steps": 2}), ("train_gif", {}),
                            ("spot_round", {"model": "classic"}),  # not listed, still callable by name
                            ("invert", {"model": "classic", "image": picture, "restarts": 1})]:
        call(mcp, name, arguments)
    folders = {str(page.files.folder), str(page.service.settings.runs_dir), "/tmp/", "gradio_api/file="}
    for text in answers:  # this test's, and every other answer this module got
        assert not any(folder in text for folder in folders), text[:300]


@pytest.mark.slow
def test_the_readme_example_conversation_runs(app, tmp_path):
    _, url, _ = app
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "mcp_example.py"), url, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "discriminate: D's score" in done.stdout and "invert: found as a" in done.stdout
    assert {path.name for path in tmp_path.iterdir()} == {"drawn.png", "reconstruction.png", "path.gif", "nearest.png"}


def test_mcp_off_serves_no_mcp(app, tmp_path, monkeypatch):
    _, url, _ = app
    assert httpx.get(url + "gradio_api/mcp/schema", timeout=30).status_code == 200
    monkeypatch.setenv("MNIST_GAN_MCP", "0")
    with served_app(tmp_path) as (_, url):
        assert httpx.get(url + "gradio_api/mcp/schema", timeout=30).status_code == 404


@pytest.mark.slow
def test_on_a_space_anonymous_agents_may_look_but_not_change_anything(tmp_path):
    """A Space's configuration (as Hugging Face sets it, OAuth included; admins named): every tool's name carries
    the Space's, every state-changing tool is refused with the page's message, the visitor tools answer."""
    env = {"SYSTEM": "spaces", "SPACE_ID": "alice/mnist-gan", "MNIST_GAN_ADMINS": "alice",
           "OAUTH_CLIENT_ID": "mnist-gan-test", "OAUTH_CLIENT_SECRET": "not-a-secret", "OAUTH_SCOPES": "openid",
           "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}  # never asked: nobody signs in here
    with AppProcess(tmp_path / "space", env) as space, McpClient(space.url) as mcp:
        names = {tool.name for tool in mcp.tools()}
        assert names == {f"mnist_gan_{name}" for name in TOOLS}  # gradio's login check is no tool either
        for name, arguments in CHANGING.items():
            result = mcp.call(f"mnist_gan_{name}", arguments)
            assert result.isError and OWNER_ONLY in texts(result)[0], (name, texts(result))
        assert report(mcp.call("mnist_gan_train_status"))["state"] == "idle"  # nothing started
        generated = mcp.call("mnist_gan_generate", {"model": "classic", "seed": 1, "n": 4, "digit": "all digits"})
        assert not generated.isError and images(generated)
        [(_, png)] = images(generated)
        judged = mcp.call("mnist_gan_discriminate", {"model": "classic", "image": data_url(pixels(png))})
        assert not judged.isError and "score" in report(judged)
        for name in ("models", "latent_directions", "runs_list", "train_status"):
            result = mcp.call(f"mnist_gan_{name}", {"model": "classic"} if name == "latent_directions" else {})
            assert not result.isError, (name, texts(result))
        assert "No training run yet" in mcp.read(RUN_URI)
        assert not list(Path(space.runs).glob("*/checkpoint*"))


def test_the_status_resource_says_a_run_in_words():
    running = dataclasses.replace(
        RunStatus.idle(), run="run-1", state=State.RUNNING, step=1500, steps=3000, progress=0.5, eta_s=120.0,
        images_per_sec=2500.0, d_acc_real=0.7, d_acc_fake=0.6, d_loss=1.2, g_loss=0.9, run_dir="/srv/runs/run-1",
        data="bundled sample, 2,000 images", quality=[{"step": 1000, "cfid": 3.2}])
    text = status_text(running)
    for words in ("Run run-1: running, step 1,500 of 3,000 (50%), training on bundled sample, 2,000 images.",
                  "2,500 images/s, about 2 min left", "0.70 on real digits, 0.60 on generated ones",
                  "cFID 3.2 at step 1,000"):
        assert words in text
    assert "/srv" not in text
