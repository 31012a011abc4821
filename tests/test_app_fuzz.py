"""Hostile input on every public endpoint (hypothesis): out-of-range and huge numbers, NaN and infinity, empty and
very long strings, wrong types. Each call returns a result or a plain message, and
the server keeps serving. The calls go through gradio's raw REST path, which can carry NaN and Infinity."""

import json

import httpx
import huggingface_hub.constants
import pytest
from gradio_client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testing.app import rest_call
from testing.hub_server import HubServer
from testing.system import wait_until

# Each endpoint's parameters, with values that pass its checks: examples mix these with hostile values.
ENDPOINTS = {
    "generate": ["classic", 0, 4, "all digits", 1.0],
    "latent": ["classic", 7, "0", "directions", [0.5, -1.0]],
    "latent_directions": ["classic", "raw"],
    "interpolate": ["classic", 0, 1, 4, "0"],
    "models": [],
    "train_start": ["classic", False, 16, 2e-4, 2e-4, 0.5, 0.999, 200, "bce", "sample", 0, 7, 1, "classic"],
    "train_step_once": ["d"],
    "train_set": [1e-4, None, None, None],
    "train_fork": ["nope", None, None, None, None, None, None, None, None, 300, None, None, None, None],
    "train_inspection": [],
    "runs_list": [],
    "runs_compare": [["a", "b"], None],
    "atlas": ["", None],
    "atlas_gif": [""],
    "train_pause": [],
    "train_resume": [],
    "train_stop": [],
    "train_resume_run": [None],
    "train_status": [],
    "train_gif": [],
    "push": ["classic", "alice/fuzz", "hf_fuzzToken5Jq8sT2vX9mN0pL6zQ", False, "v1"],
    "pull": ["alice/fuzz", "main", ""],
    # an image file is uploaded first (tests/test_app_inside.py sends real ones): here, no file, or a path that
    # was never uploaded, and everything hostile in their place
    "discriminate": ["classic", None, "auto"],
    "invert": ["classic", {"path": "/etc/hostname"}, "auto", 4],
    "d_pull": ["classic", None, "auto", 12],
    "z_pull": ["mlp-cond", 0, "3", 4],
    "style_grid": ["mlp-cond", 0],
    "morph": ["mlp-cond", "3", "8", 0, 4],
    "spot_round": ["classic"],
    "spot_answer": ["not-a-round", [1, 2]],
    "model_card": ["classic"],
    "run_status": [],
}
RUN_STARTERS = ("train_start", "train_resume_run", "train_fork")  # a valid call starts a real run: stopped at once
BIG = 10**30

numbers = st.one_of(
    st.integers(min_value=-BIG, max_value=BIG),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**31, 2**32, 2**63, -2**63, 10**300, 1e308, -1e308, 5e-324, 0.5]),
)
strings = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "../../etc/passwd", "alice/../../x", "http://127.0.0.1:1/x", "a" * 100_000,
                     "\x00", "NaN", "Infinity", "classic\n", "{}", "hf_", "🧮" * 1000]),
)
hostile = st.one_of(
    numbers, strings, st.booleans(), st.none(),
    st.lists(st.one_of(numbers, strings, st.none()), max_size=20),
    st.dictionaries(st.text(max_size=5), st.one_of(numbers, strings), max_size=3),
    st.just([0.0] * 10_000),
)


def arguments(endpoint: str) -> st.SearchStrategy:
    """Each parameter valid or hostile (as many as the endpoint has: gradio itself checks the count)."""
    valid = ENDPOINTS[endpoint]
    return st.tuples(*[st.one_of(st.just(value), hostile) for value in valid]).map(list) if valid else st.just([])


@pytest.fixture(scope="module")
def server(app_server, monkeypatch_module):
    """The app, with the Hub at a local server (a valid-looking repo id must never reach the internet)."""
    monkeypatch_module.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch_module.delenv("HF_TOKEN", raising=False)
    with HubServer({}) as hub, httpx.Client(timeout=120) as http:
        monkeypatch_module.setenv("HF_ENDPOINT", hub.url)
        yield app_server[1], http


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def encode(args: list) -> str:
    return json.dumps(args)  # NaN and Infinity as JSON's extension writes them (gradio reads them)


def settle(http: httpx.Client, url: str) -> None:
    """A valid call may have started a real run: stop it and wait until its process has ended."""
    def ended() -> bool:
        kind, status = rest_call(http, url, "train_status", [])
        assert kind == "complete", status
        state = status[0]["state"]
        if state not in ("idle", "stopped", "finished", "failed", "stopping"):
            rest_call(http, url, "train_stop", [])
        return state in ("idle", "stopped", "finished", "failed")

    wait_until(ended, 600, "the run to stop", every=0.3)


def check(http: httpx.Client, url: str, endpoint: str, args: list) -> None:
    kind, value = rest_call(http, url, endpoint, encode(args))
    if kind == "http":  # a body over the request limit is refused before anything reads it
        assert value.startswith("413: ") and len(encode(args)) > 256 * 1024, f"{endpoint}: {value}"
    elif kind == "error":
        assert isinstance(value, str) and value.strip(), f"{endpoint}{args!r:.300}: an error without a message"
        assert "Traceback" not in value and 'File "' not in value, value[:300]
        assert not value.startswith("internal error"), f"{endpoint}{args!r:.300}: {value[:300]}"  # a bug, not input
    else:
        assert kind == "complete", f"{endpoint}{args!r:.300}: {kind} {value!r:.300}"
    if endpoint in RUN_STARTERS:
        settle(http, url)
    kind, models = rest_call(http, url, "models", [])  # and the server is still serving
    assert kind == "complete" and "classic" in [model["name"] for model in models[0]]


def test_a_step_that_is_not_a_number_is_refused_in_words(server):
    """An atlas or a comparison at a step that is not a number once answered "internal error" with a traceback."""
    url, http = server
    for step in ('"abc"', "true", "NaN", "[1]", '{"a": 1}'):
        for endpoint, args in (("atlas", '["", %s]'), ("runs_compare", '[["a", "b"], %s]')):
            kind, value = rest_call(http, url, endpoint, args % step)
            assert kind == "error" and value.startswith("step must be a number, got "), (endpoint, step, value)


def test_the_examples_cover_every_public_endpoint_and_parameter(server):
    url, _ = server
    api = Client(url, verbose=False, analytics_enabled=False).view_api(print_info=False, return_format="dict")
    parameters = {name.lstrip("/"): len(info["parameters"]) for name, info in api["named_endpoints"].items()}
    assert parameters == {name: len(values) for name, values in ENDPOINTS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_endpoint_answers_hostile_input_plainly(server, endpoint):
    url, http = server
    settle(http, url)
    examples = 10 if endpoint in RUN_STARTERS else 30

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(args=arguments(endpoint))
    def run(args):
        check(http, url, endpoint, args)

    run()
