"""What the page's in-browser generator gets from the launched app (GET /draw/* and /web-assets/*): the exact
latents, paths and directions the server draws with, enough to reproduce its pixels; the models' ONNX files and the
page's script at content-hash URLs; and onnxruntime-web, the local copy or the pinned CDN's."""

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import onnxruntime
import pytest

from mnist_gan.images import interpolation, latents, make_grid, to_uint8
from mnist_gan.model.generator import shipped_models
from mnist_gan.model.onnx_export import ONNX_FILE, ONNX_INFO, feeds
from mnist_gan.serving.drawing import ALL_DIGITS
from testing.system import wait_until
from mnist_gan.serving.web_runtime import CDN as ORT_CDN
from mnist_gan.serving.web_runtime import FILES as ORT_FILES
from mnist_gan.serving.web_runtime import SRI as ORT_SRI
from mnist_gan.serving.web_runtime import sri
from ui.in_browser import ORT_DIST, WebAssets

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def web(app_server):
    app, url = app_server
    with httpx.Client(base_url=url, timeout=60) as client:
        yield app, client


def floats(text: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), "<f4").reshape(shape)


@pytest.mark.parametrize("query, args", [
    ("seed=7&n=64", ("mlp-uncond", 7, 64, ALL_DIGITS, 1.0)),
    ("model=mlp-cond&seed=3&n=64", ("mlp-cond", 3, 64, ALL_DIGITS, 1.0)),  # a row per digit: 70 latents
    ("model=mlp-cond&seed=3&n=20&digit=4&temperature=0.7", ("mlp-cond", 3, 20, "4", 0.7)),
    ("model=classic&seed=1&n=1&temperature=2", ("classic", 1, 1, ALL_DIGITS, 2.0)),
])
def test_latents_reproduce_the_servers_grid(web, query, args):
    app, client = web
    answer = client.get(f"draw/latents?{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "public, max-age=86400"
    q = answer.json()
    drawing = app.service.drawing
    grid = drawing.grid_request(*args)
    z = floats(q["z"], (q["count"], q["latent_dim"]))
    np.testing.assert_array_equal(z, latents(grid.seed, q["count"], 100, grid.temperature))  # bit for bit
    assert (q["rows"], q["cols"], q["scale"], q["pad"]) == (grid.rows, grid.cols, grid.scale, 2)
    labels = None if q["labels"] is None else np.asarray(q["labels"])
    generator = app.service.library.get(args[0])
    # what the page does with them: the model's pixels, converted and laid out as the server does
    images = to_uint8(generator.images(z, labels))
    np.testing.assert_array_equal(make_grid(images, q["rows"], q["cols"], pad=q["pad"], scale=q["scale"]),
                                  drawing.generate(*args))


def test_etag_and_304(web):
    _, client = web
    first = client.get("draw/latents?seed=7&n=64")
    tag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    assert client.get("draw/latents?n=64&seed=7").headers["etag"] == tag
    again = client.get("draw/latents?seed=7&n=64", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert client.get("draw/latents?seed=8&n=64", headers={"If-None-Match": tag}).status_code == 200


def test_the_interpolation_path_reproduces_the_servers_strip(web):
    app, client = web
    q = client.get("draw/interpolation?model=mlp-cond&seed_a=2&seed_b=9&frames=7").json()
    z = floats(q["z"], (q["frames"], q["latent_dim"]))
    np.testing.assert_array_equal(z, interpolation(2, 9, 7, 100))
    images = to_uint8(app.service.library.get("mlp-cond").images(z, np.full(7, 3)))
    strip, _ = app.service.drawing.interpolate("mlp-cond", 2, 9, 7, "3")
    np.testing.assert_array_equal(make_grid(images, 1, q["frames"], pad=q["pad"], scale=q["scale"]), strip)


@pytest.mark.parametrize("mode", ["directions", "raw"])
def test_directions_are_the_sliders_own(web, mode):
    app, client = web
    answer = client.get(f"draw/directions?model=classic&mode={mode}")
    assert answer.headers["cache-control"] == "no-cache" and answer.headers["etag"]
    q = answer.json()
    basis = app.service.drawing.basis("classic", mode)
    assert q["labels"] == [d.label for d in basis] and q["count"] == len(basis)
    np.testing.assert_array_equal(floats(q["vectors"], (q["count"], q["latent_dim"])),
                                  np.stack([d.vector for d in basis]))


@pytest.mark.parametrize("name", list(shipped_models()))
def test_each_shipped_model_is_served_by_its_content(web, name):
    _, client = web
    q = client.get(f"draw/model?model={name}").json()
    folder = shipped_models()[name]
    info = json.loads((folder / ONNX_INFO).read_text())
    assert q["onnx"]["sha256"] == info["sha256"] and q["reason"] is None
    assert q["onnx"]["url"] == f"web-assets/{info['sha256'][:16]}/generator.onnx"
    assert (q["latent_dim"], q["conditional"], bool(q["latent_code"])) == \
        (100, name == "mlp-cond", name == "mlp-uncond")
    served = client.get(q["onnx"]["url"])
    assert served.headers["cache-control"] == IMMUTABLE
    assert hashlib.sha256(served.content).hexdigest() == info["sha256"]
    assert client.get(f"web-assets/{'0' * 16}/generator.onnx").status_code == 404


def test_refusals_say_what_is_wrong(web):
    _, client = web
    for path, status, message in [
        ("draw/latents?seed=-1", 400, "seed must be between 0 and"),
        ("draw/latents?model=nope", 404, "unknown model 'nope'"),
        ("draw/latents?seed=1&colour=red", 400, "unknown parameter 'colour'"),
        ("draw/latents?model=mlp-uncond&digit=3", 400, "unconditional"),
        ("draw/interpolation?frames=1", 400, "frames"),
        ("draw/interpolation?seed_a=1&seed_a=2", 400, "more than once"),
        ("draw/directions?mode=sideways", 400, "mode must be"),
        ("draw/model?model=nope", 404, "unknown model"),
    ]:
        answer = client.get(path)
        assert answer.status_code == status and message in answer.json()["error"], (path, answer.text)


def test_the_pages_script_and_the_runtime_are_immutable(web):
    app, client = web
    assets = app.assets
    script = client.get(assets.engine, headers={"Accept-Encoding": "gzip"})
    assert script.status_code == 200 and "window.mnistGan" in script.text
    assert script.headers["cache-control"] == IMMUTABLE and script.headers["content-type"].startswith("text/javascript")
    runtime = assets.runtime
    if runtime["source"] == "cdn":
        assert runtime["base"] == ORT_CDN and runtime["integrity"] == ORT_SRI
        pytest.skip("no local copy of onnxruntime-web (npm ci): the page uses the CDN")
    for key, name in ORT_FILES.items():
        packed = client.get(runtime["base"] + name, headers={"Accept-Encoding": "gzip"})
        assert packed.headers["content-encoding"] == "gzip" and packed.headers["cache-control"] == IMMUTABLE
        digest = "sha384-" + base64.b64encode(hashlib.sha384(packed.content).digest()).decode()  # httpx unpacked it
        assert digest == ORT_SRI[key], name
    assert client.get(runtime["base"] + ORT_FILES["wasm"]).headers["content-type"] == "application/wasm"


def test_the_runtime_is_the_local_copy_only_when_it_is_exactly_the_pinned_one(tmp_path):
    assert WebAssets(None).runtime["source"] == "cdn"
    if not ORT_DIST.is_dir():
        pytest.skip("no local copy of onnxruntime-web (npm ci)")
    assert {key: sri(ORT_DIST / name) for key, name in ORT_FILES.items()} == ORT_SRI  # the CDN serves npm's files
    assert WebAssets(ORT_DIST).runtime["source"] == "local"
    for name in ORT_FILES.values():
        shutil.copyfile(ORT_DIST / name, tmp_path / name)
    assert WebAssets(tmp_path).runtime["source"] == "local"
    (tmp_path / ORT_FILES["mjs"]).write_text("// another version")
    assert WebAssets(tmp_path).runtime["source"] == "cdn"


@pytest.mark.slow
def test_a_model_the_app_did_not_ship_gets_its_own_export_once(web, tmp_path):
    """A pulled model's ONNX file is not trusted (it was checked against the uploader's manifest, not against its
    weights): the app exports the weights it loaded, in the background, and serves that."""
    app, client = web
    folder = tmp_path / "pulled"
    shutil.copytree(shipped_models()["mlp-cond"], folder)
    for name in (ONNX_FILE, ONNX_INFO):  # another model's file, described as if it were this one's
        shutil.copyfile(shipped_models()["classic"] / name, folder / name)
    app.service.library.add("alice/digits@0123abc", folder, "from the Hub (test)")
    first = client.get("draw/model", params={"model": "alice/digits@0123abc"}).json()
    assert first["onnx"] is None and first["reason"] == "this model's browser file is being made"
    ready = wait_until(lambda: client.get("draw/model", params={"model": "alice/digits@0123abc"}).json()["onnx"],
                       120, "the export")
    served = client.get(ready["url"]).content
    assert hashlib.sha256(served).hexdigest() == ready["sha256"] != json.loads((folder / ONNX_INFO).read_text())[
        "sha256"]
    session = onnxruntime.InferenceSession(served, providers=["CPUExecutionProvider"])
    z, labels = latents(5, 10, 100), np.arange(10)
    images = session.run(None, feeds(app.service.library.get("alice/digits@0123abc").config, z, labels))[0]
    assert np.abs(images - app.service.library.get("alice/digits@0123abc").images(z, labels)).max() <= 1e-4
    exports = app.service.settings.exports
    assert [p.name for p in exports.iterdir()] == [app.service.drawing.browser.file("alice/digits@0123abc")[0]
                                                   .path.parent.name]  # one export, keyed by the weights' sha256


def test_gradios_page_files_are_served_from_memory_and_kept_a_year(app_server):
    """A first visit fetches ~100 of gradio's page files: each is answered with the build's own bytes, compressed
    once, cached a year (the names carry a content hash) and 304 when asked again; anything else goes to gradio."""
    from gradio.routes import BUILD_PATH_LIB

    _, url = app_server
    with httpx.Client(timeout=60) as http:
        script = re.search(r'src="\./(assets/[^"]+\.js)"', http.get(url).text).group(1)
        on_disk = (Path(BUILD_PATH_LIB) / script.split("/", 1)[1]).read_bytes()
        for encoding in ("br", "gzip", "identity"):
            answer = http.get(url + script, headers={"accept-encoding": encoding})
            assert answer.status_code == 200 and answer.content == on_disk, encoding  # httpx decodes br and gzip
            assert answer.headers["cache-control"] == IMMUTABLE
            assert answer.headers.get("content-encoding", "identity") == encoding
            assert "javascript" in answer.headers["content-type"]
        again = http.get(url + script, headers={"if-none-match": answer.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert http.head(url + script).status_code == 200
        for name in ("assets/nothing-12345678.js", "assets/../routes.py", "assets/%2e%2e%2froutes.py",
                     "assets/..%2f..%2fgradio%2froutes.py"):
            answer = http.get(url + name)
            assert answer.status_code in (400, 403, 404) and "cache-control" not in answer.headers, (name, answer)


def test_the_page_and_its_config_are_rendered_once_per_root(app_server, monkeypatch):
    """GET / and /config cost gradio a deep copy of its config each: the first answer for a root URL is kept and
    sent again, compressed as asked, and another root (a proxy's X-Forwarded-Host) gets a page of its own."""
    from gradio import route_utils

    rendered, real = [], route_utils.update_root_in_config
    monkeypatch.setattr(route_utils, "update_root_in_config", lambda config, root: rendered.append(root) or
                        real(config, root))
    _, url = app_server
    room = {"x-forwarded-host": "class.example", "x-forwarded-proto": "https"}
    with httpx.Client(timeout=60) as http:
        first = http.get(url, headers={**room, "accept-encoding": "identity"})
        assert first.status_code == 200 and rendered == ["https://class.example"]
        assert '"root":"https://class.example"' in first.text.replace(" ", "")
        for encoding in ("br", "gzip", "identity", "br"):
            again = http.get(url, headers={**room, "accept-encoding": encoding})
            assert again.status_code == 200 and again.content == first.content, encoding  # httpx decodes
            assert again.headers.get("content-encoding", "identity") == encoding
            assert again.headers["content-type"] == first.headers["content-type"]
        assert rendered == ["https://class.example"]
        config = [http.get(url + "config", headers=room).json() for _ in range(3)]
        assert config[0] == config[2] and config[0]["root"] == "https://class.example"
        assert len(rendered) == 2
        other = http.get(url, headers={"x-forwarded-host": "other.example"})
        assert "http://other.example" in other.text and "class.example" not in other.text and len(rendered) == 3
        for query in ("?__theme=dark", "?page=", "?deep_link=x"):  # a query goes to gradio each time
            assert http.get(url + query, headers=room).status_code in (200, 404)
        assert len(rendered) == 6
        assert http.head(url, headers=room).status_code == 200


def test_the_apps_result_files_are_sent_from_memory_or_their_folder_and_kept_a_year(app_server, monkeypatch):
    """A look inside shows up to six result files and a spot-the-fake round sixteen: each is sent without gradio's
    file route, the latest from memory (a round's pictures are only there) and older ones from the app's folder,
    cached a year (the names are a content hash or random), and 304 when asked again; anything else under
    gradio's file URL goes to gradio as before."""
    from gradio import routes

    fetched, real = [], routes.file_fetch
    monkeypatch.setattr(routes, "file_fetch", lambda path, *args: fetched.append(path) or real(path, *args))
    page, url = app_server
    image = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    files = [Path(page.files.png(image)), Path(page.files.pngs_once([image])[0]),
             Path(page.files.gif(np.stack([image] * 2)))]
    made = [page.files.recent(file.name) for file in files]
    assert made[0] == files[0].read_bytes() and made[2] == files[2].read_bytes()
    assert made[1] and not files[1].exists()  # a round's picture: never written to the disk
    with httpx.Client(base_url=url + "gradio_api/file=", timeout=60) as http:
        for file, data in zip(files, made, strict=True):
            answer = http.get(str(file))
            assert answer.status_code == 200 and answer.content == data, file.name
            assert answer.headers["cache-control"] == IMMUTABLE
            assert answer.headers["content-type"] == f"image/{file.suffix[1:]}"
            again = http.get(str(file), headers={"if-none-match": answer.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
            head = http.head(str(file))
            assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == answer.headers["etag"]
        assert fetched == []
        elsewhere = files[0].parent.parent / ("0" * 24 + ".png")  # gradio's cache, not the app's results
        elsewhere.write_bytes(files[0].read_bytes())
        ranged = http.get(str(files[0]), headers={"range": "bytes=0-9"})
        assert ranged.status_code == 206 and ranged.content == files[0].read_bytes()[:10]
        for path in (str(elsewhere), f"{files[0].parent}/%2e%2e/{files[0].parent.name}/{files[0].name}"):
            answer = http.get(path)
            assert answer.status_code == 200 and "cache-control" not in answer.headers, path
        files[0].unlink()  # trimmed from the disk: one of the latest, still sent from memory
        kept = http.get(str(files[0]))
        assert kept.status_code == 200 and kept.content == made[0] and kept.headers["cache-control"] == IMMUTABLE
        older = files[0].parent / ("1" * 24 + ".png")  # a result of the app's earlier run: on the disk only
        older.write_bytes(made[0])
        answer = http.get(str(older))
        assert answer.status_code == 200 and answer.content == made[0]
        assert answer.headers["cache-control"] == IMMUTABLE
        older.unlink()  # trimmed: gradio answers, as it did
        gone = http.get(str(older))
        assert gone.status_code == 403 and "cache-control" not in gone.headers
        assert len(fetched) == 4


def test_rendered_pages_keep_few_roots_and_pass_on_what_they_do_not_know():
    import asyncio

    from ui.page_files import RenderedPages

    calls = []

    async def gradio(scope, receive, send):
        calls.append(scope["path"])
        headers = [(b"content-type", b"text/html")]
        if scope["path"] == "/cookie":
            headers.append((b"set-cookie", b"a=b"))
        host = dict(scope["headers"]).get(b"host", b"")
        await send({"type": "http.response.start", "status": 404 if scope["path"] == "/missing" else 200,
                    "headers": headers})
        await send({"type": "http.response.body", "body": b"page for " + host})

    config = [object()]
    pages = RenderedPages(gradio, config=lambda: config[0])

    def get(path="/", host=b"a", query=b"", method="GET", cookie=b""):
        sent = []

        async def send(message):
            sent.append(message)

        headers = [(b"host", host), (b"accept-encoding", b"identity")] + ([(b"cookie", cookie)] if cookie else [])
        scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers,
                 "root_path": ""}
        asyncio.run(pages(scope, None, send))
        return sent[1]["body"]

    assert get() == b"page for a" and get() == b"page for a" and calls == ["/"]
    for i in range(RenderedPages.KEEP + 4):  # hosts a client made up
        assert get(host=b"h%d" % i) == b"page for h%d" % i
    assert len(pages.kept) == RenderedPages.KEEP and len(calls) == 1 + RenderedPages.KEEP + 4
    get()  # its root was the oldest: rendered again
    assert len(calls) == RenderedPages.KEEP + 6
    for kind in ({"query": b"page=x"}, {"method": "HEAD"}, {"cookie": b"access-token-1=secret"}):
        before = len(calls)
        get(**kind), get(**kind)
        assert len(calls) == before + 2, kind
    pages.PATHS = ("/", "/cookie", "/missing")
    for path in ("/cookie", "/missing", "/other"):  # not a plain 200, or another path
        get(path), get(path)
        assert calls[-2:] == [path, path]
    config[0] = object()  # a new config: rendered again
    before = len(calls)
    get()
    assert len(calls) == before + 1
