"""GET /png: the Generate grid at a permanent URL, from the launched app (a plain route beside gradio)."""

import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from mnist_gan.errors import InvalidInput
from mnist_gan.serving import permalink
from mnist_gan.serving.drawing import ALL_DIGITS
from testing.app import rest_call


@pytest.fixture(scope="module")
def web(app_server):
    app, url = app_server
    with httpx.Client(base_url=url, timeout=60) as client:  # kept alive, as a browser's connection
        yield app, url, client


def _generate_png(client, url, *args) -> bytes:
    kind, value = rest_call(client, url, "generate", list(args), session="permalink-test")
    assert kind == "complete", value
    return client.get(value[0]["url"]).content


@pytest.mark.parametrize("query, args", [
    ("seed=7&n=64", ("mlp-uncond", 7, 64, ALL_DIGITS, 1.0)),
    ("model=mlp-cond&seed=3&n=20&digit=4&temperature=0.7", ("mlp-cond", 3, 20, "4", 0.7)),
    ("model=mlp-cond&seed=3&n=30", ("mlp-cond", 3, 30, ALL_DIGITS, 1.0)),
    ("model=classic&seed=1&n=1&temperature=2", ("classic", 1, 1, ALL_DIGITS, 2.0)),
])
def test_the_png_is_the_generate_endpoints_png(web, query, args):
    app, url, client = web
    answer = client.get(f"png?{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.content == _generate_png(client, url, *args)  # the same bytes, not only the same pixels
    assert re.fullmatch(r'"[0-9a-f]{32}"', answer.headers["etag"])
    assert answer.headers["cache-control"] == "public, max-age=86400"


def test_scale_enlarges_the_same_pixels(web):
    _, _, client = web
    plain = np.asarray(Image.open(io.BytesIO(client.get("png?seed=7&n=4&scale=1").content)))
    big = np.asarray(Image.open(io.BytesIO(client.get("png?seed=7&n=4&scale=3").content)))
    np.testing.assert_array_equal(big, np.repeat(np.repeat(plain, 3, 0), 3, 1))
    assert plain.shape == (2 * 30 + 2, 2 * 30 + 2)


def test_etag_and_304(web):
    _, _, client = web
    first = client.get("png?seed=7&n=64")
    tag = first.headers["etag"]
    assert client.get("png?n=64&seed=7").headers["etag"] == tag  # the same settings in another order
    assert client.get("png?seed=7&n=64&model=mlp-uncond&temperature=1.0&scale=2").headers["etag"] == tag  # defaults
    for other in ("png?seed=8&n=64", "png?seed=7&n=63", "png?seed=7&n=64&temperature=0.9",
                  "png?seed=7&n=64&model=classic", "png?seed=7&n=64&scale=3"):
        assert client.get(other).headers["etag"] != tag, other
    again = client.get("png?seed=7&n=64", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert client.get("png?seed=7&n=64", headers={"If-None-Match": f'"other", W/{tag}'}).status_code == 304
    assert client.get("png?seed=7&n=64", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("query, message", [
    ("seed=-1", "seed must be between 0 and 4294967295, got -1"),
    ("seed=abc", "seed must be a whole number between 0 and 4294967295, got 'abc'"),
    ("seed=1.5", "seed must be a whole number"),
    ("n=0", "grid size must be a whole number from 1 to 100, got 0"),
    ("n=101", "grid size must be a whole number from 1 to 100"),
    ("n=1e9", "grid size must be a whole number from 1 to 100"),
    ("temperature=nan", "temperature must be a number from 0.1 to 2, got nan"),
    ("temperature=5", "temperature must be a number from 0.1 to 2"),
    ("scale=9", "scale must be a whole number from 1 to 8"),
    ("digit=3", "mlp-uncond is unconditional: it cannot be asked for a digit"),
    ("model=mlp-cond&digit=x", "digit must be one of 0-9"),
    ("seed=1&seed=2", "seed is given more than once"),
    ("color=red", "unknown parameter 'color': use model, seed, n, digit, temperature, scale"),
    ("n=" + "9" * 600, "the query is longer than 512 characters"),
])
def test_a_bad_parameter_is_a_400_with_a_json_message(web, query, message):
    _, _, client = web
    answer = client.get(f"png?{query}")
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"
    assert message in answer.json()["error"]
    assert "/" not in answer.json()["error"].replace("0-9", "")  # no server path in any message


def test_an_unknown_model_is_a_404_without_server_paths(web):
    app, _, client = web
    answer = client.get("png?model=../../etc/passwd&seed=1")
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert "unknown model '../../etc/passwd'" in error and "mlp-uncond" in error
    for folder in {str(app.service.library.folder(name)) for name in app.service.library.names()}:
        assert folder not in error


def test_link_is_relative_and_leaves_defaults_out():
    assert permalink.link("mlp-uncond", 7.0, 64, ALL_DIGITS, 1.0) == "png?model=mlp-uncond&seed=7"
    assert permalink.link("owner/m@abc1234", 3, 20, "4", 0.7) == \
        "png?model=owner%2Fm%40abc1234&seed=3&n=20&digit=4&temperature=0.7"
    assert permalink.parse("model=owner%2Fm%40abc1234&seed=3&n=20&digit=4&temperature=0.7", "x") == {
        "model": "owner/m@abc1234", "seed": 3, "n": 20, "digit": "4", "temperature": 0.7, "scale": None}
    with pytest.raises(InvalidInput, match="too many parameters"):
        permalink.parse("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8", "x")
