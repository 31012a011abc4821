"""The app as a public Space: MNIST_GAN_ADMINS reserves training and pushing to the Space's owners, checked through
the Spaces OAuth login; and no token ever shows: not in the app's output, worker.log, the runs folder, gradio's
cache, the Hub cache, the API's answers or the page.

The app runs as its own process with SYSTEM=spaces, so it has a "Sign in with Hugging Face" button. Off a real Space
gradio mocks that login: it signs in as the user of the machine's HF_TOKEN, asked of the Hub at HF_ENDPOINT, here
the local test Hub.
"""

import re
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from testing.app import AppProcess, wait_for
from testing.browser import browser, wait_for_grid, wait_for_text
from testing.hub_server import HubServer
from testing.system import wait_until

LOGIN = "hf_ownerLogin5Jq8sT2vX9mN0pL6zQa"  # the Space's HF_TOKEN: who the mocked login signs in as (alice)
PUSH = "hf_pushSecret7Rk3wQ5zB1cD8eF2gHj"  # pasted into the push form
OWNER_ONLY = "is reserved to this Space's owners: sign in with Hugging Face"
answers: list[str] = []  # every answer the app gave in this module, searched for tokens at the end


@pytest.fixture(scope="module")
def hub():
    with HubServer({LOGIN: ("alice", True), PUSH: ("alice", True)}) as server:
        yield server


@pytest.fixture(scope="module")
def space(tmp_path_factory, hub):
    env = {"SYSTEM": "spaces", "MNIST_GAN_ADMINS": "Alice, carol", "HF_TOKEN": LOGIN, "HF_ENDPOINT": hub.url,
           "HF_HUB_DISABLE_XET": "1"}
    with AppProcess(tmp_path_factory.mktemp("space"), env) as app:
        yield app


def client(url: str, folder: Path, cookie: str | None = None) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(folder),
                  headers={"Cookie": cookie} if cookie else None)


def call(api: Client, endpoint: str, **kwargs):
    """A call whose answer (or error message) is kept for the token search."""
    try:
        result = api.predict(api_name=endpoint, **kwargs)
    except AppError as e:
        answers.append(str(e))
        raise
    answers.append(repr(result))
    return result


def sign_in(url: str) -> str:
    """The session cookie of a signed-in visitor, from gradio's own login routes."""
    with httpx.Client(base_url=url, timeout=30) as http:
        first = http.get("login/huggingface")
        assert first.status_code in (302, 307), first.text
        second = http.get(first.headers["location"])
        match = re.match(r"session=([^;]+)", second.headers.get("set-cookie", ""))
        assert second.status_code in (302, 307) and match, second.headers
        return f"session={match.group(1)}"


@pytest.mark.slow
def test_visitors_generate_explore_and_watch_but_may_not_train_or_push(space, hub, tmp_path):
    visitor = client(space.url, tmp_path)
    assert Path(call(visitor, "/generate", model="classic", seed=1, n=4, digit="all digits", temperature=1.0)).is_file()
    assert Path(call(visitor, "/latent", model="classic", seed=1, digit="0", mode="raw", amounts=[1.0])).is_file()
    assert call(visitor, "/train_status")["state"] == "idle"
    for endpoint, kwargs in [("/train_start", {"data": "sample"}), ("/train_pause", {}), ("/train_resume", {}),
                             ("/train_stop", {}), ("/train_resume_run", {}),
                             ("/push", {"model": "classic", "repo_id": "alice/visitor", "token": PUSH}),
                             ("/pull", {"repo_id": "alice/space-model"})]:
        with pytest.raises(AppError, match=OWNER_ONLY):
            call(visitor, endpoint, **kwargs)
    assert call(visitor, "/train_status")["state"] == "idle"  # nothing started
    assert "alice/visitor" not in hub.repos  # refused before any request to the Hub


@pytest.mark.slow
def test_a_signed_in_owner_trains_and_pushes_and_the_worker_never_holds_a_token(space, hub, tmp_path):
    owner = client(space.url, tmp_path, sign_in(space.url))
    visitor = client(space.url, tmp_path)
    started = call(owner, "/train_start", batch_size=16, steps=3000, data="sample")
    assert started["state"] == "starting"
    children = wait_until(space.children, 30, "the training process", every=0.1)
    assert LOGIN.encode() in Path(f"/proc/{space.process.pid}/environ").read_bytes()  # the app holds it...
    child_env = Path(f"/proc/{children[0]}/environ").read_bytes()
    assert LOGIN.encode() not in child_env and b"HF_TOKEN=" not in child_env  # ...its training process does not

    wait_for(owner, lambda s: s["state"] == "running" and s["step"] >= 20, 600, "the run")
    with pytest.raises(AppError, match=OWNER_ONLY):
        call(visitor, "/train_stop")
    assert call(owner, "/train_pause")["state"] in ("pausing", "paused")
    wait_for(owner, lambda s: s["state"] == "paused", 600, "the pause")
    assert call(owner, "/train_resume")["state"] in ("resuming", "running")
    assert call(owner, "/train_stop")["state"] == "stopping"
    wait_for(owner, lambda s: s["state"] == "stopped", 600, "the stop")

    pushed = call(owner, "/push", model="classic", repo_id="alice/space-model", token=PUSH)
    assert re.fullmatch(r"[0-9a-f]{40}", pushed["commit_sha"])
    assert call(owner, "/pull", repo_id="alice/space-model", revision="main", token=PUSH)["commit_sha"] == \
        pushed["commit_sha"]
    # failures carry the token too: a lost connection, a namespace it cannot write
    hub.drop = {"commit": "before"}
    try:
        with pytest.raises(AppError, match="is unreachable"):
            call(owner, "/push", model="classic", repo_id="alice/space-model", token=PUSH)
    finally:
        hub.drop = {}
    with pytest.raises(AppError, match="no write access to bob/model"):
        call(owner, "/push", model="classic", repo_id="bob/model", token=PUSH)


@pytest.mark.slow
def test_over_mcp_a_caller_is_who_its_cookie_says(space):
    """An MCP client sending the page's session cookie is that signed-in user; without one, anonymous."""
    from testing.mcp import McpClient, texts  # the mcp package: only this test needs it

    with McpClient(space.url, headers={"Cookie": sign_in(space.url)}) as owner, McpClient(space.url) as visitor:
        refused, answered = visitor.call("train_pause"), owner.call("train_pause")
    answers.extend(texts(refused) + texts(answered))
    assert refused.isError and OWNER_ONLY in texts(refused)[0]
    assert not any(OWNER_ONLY in text for text in texts(answered))


@pytest.mark.browser
def test_the_push_form_in_the_browser_shows_no_token(space, hub):
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(space.url + "login/huggingface")  # signs in and lands on the app
        wait_for_grid(page)
        page.get_by_role("tab", name="Hub").click()
        page.locator("#push-repo textarea, #push-repo input").first.fill("alice/from-the-page")
        page.locator("#push-token input").fill(PUSH)
        page.locator("#push-btn").click()
        result = wait_for_text(page, "#hub-result", "Pushed", 120)
        assert "alice/from-the-page" in result
        answers.append(page.locator("body").inner_text())  # everything the page shows


@pytest.mark.slow
def test_a_space_whose_owner_named_no_admin_is_closed(hub, tmp_path):
    """SPACE_ID set (as on every Space), the owner's HF_TOKEN a secret, MNIST_GAN_ADMINS unset: closed, not open."""
    env = {"SPACE_ID": "alice/mnist-gan", "HF_TOKEN": LOGIN, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"}
    with AppProcess(tmp_path / "closed", env) as closed:
        visitor = client(closed.url, tmp_path)
        requests = len(hub.requests)
        for endpoint, kwargs in [("/train_start", {"data": "sample"}), ("/train_resume_run", {}),
                                 ("/push", {"model": "classic", "repo_id": "alice/hijack"}),
                                 ("/pull", {"repo_id": "alice/space-model"})]:
            with pytest.raises(AppError, match="closed on this Space: it has no admins.*MNIST_GAN_ADMINS"):
                visitor.predict(api_name=endpoint, **kwargs)
        assert len(hub.requests) == requests and "alice/hijack" not in hub.repos  # the Hub never heard of it
        assert Path(visitor.predict(model="classic", seed=1, n=4, digit="all digits", temperature=1.0,
                                    api_name="/generate")).is_file()  # visitors still generate
        assert visitor.predict(api_name="/train_status")["state"] == "idle"


@pytest.mark.slow  # it searches what the slow tests above made the app say and write
def test_no_token_in_output_logs_files_caches_or_answers(space, hub):
    """Run last in this module: it searches what the tests above made the app write and say."""
    assert len(answers) > 15, "the tests above did not run"
    files = [path for path in space.folder.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert "worker.log" in names and "checkpoint.npz" in names  # the runs folder
    assert any(space.gradio_cache in path.parents for path in files)  # gradio's cache
    assert any((space.folder / "hub-cache") in path.parents for path in files)  # the pulled model
    assert any(path.name.startswith("app-1.") for path in files)  # the app's stdout and stderr
    assert LOGIN.encode() in Path(f"/proc/{space.process.pid}/environ").read_bytes()  # the search can find it
    for token in (LOGIN, PUSH):
        for needle in (token, token[3:], token[-12:]):  # whole, or a part of it
            assert not any(needle in answer for answer in answers)
            leaks = [str(path) for path in files if needle.encode() in path.read_bytes()]
            assert not leaks, f"a token is written in {leaks}"
        assert token.encode() not in hub.all_stored_bytes()  # nor in what was published
