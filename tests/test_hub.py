"""Hub push and pull through the real huggingface_hub client, against the local Hub server in testing/hub_server.py."""

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
import traceback

import numpy as np
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError

from mnist_gan.atomic_files import write_json
from mnist_gan.config import GANConfig
from mnist_gan.errors import WeightsError
from mnist_gan.hub import push_pull
from mnist_gan.hub.push_pull import HubError
from mnist_gan.images import encode_png, grid_shape, make_grid
from mnist_gan.model import architectures
from mnist_gan.model.generator import DEFAULT_MODEL, Generator, load_discriminator, save_models, shipped_models
from testing.hub_server import local_hub
from testing.system import cli as run_cli

ALICE = "hf_aliceWrite4Jq8sT2vX9mN0pL6zQ"
ALICE_READ = "hf_aliceRead7Rk3wQ5zB1cD8eF2gH"
BOB = "hf_bobWrite2Hn6yU4iO0pA9sD3fG5j"
WRONG = "hf_notAToken9Zx8Cv7Bn6Mm5Ll4Kk3"
TOKENS = {ALICE: ("alice", True), ALICE_READ: ("alice", False), BOB: ("bob", True)}
PULLED = {"mnist_gan.json", "gan_config.json", "generator.weights.h5", "config.json", "training.json", "samples.png",
          "generator.onnx", "generator.onnx.json"}


@pytest.fixture
def server(monkeypatch):
    with local_hub(monkeypatch, TOKENS) as running:
        yield running


def _folder(path, config: GANConfig, metrics: dict | None = None):
    generator, _ = architectures.build(config)
    save_models(path, config, generator, {"steps": 0, "note": "untrained, built for the tests"})
    if metrics:
        write_json(path / "metrics.json", metrics)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small class-conditional DCGAN weights folder, with made-up metrics that only test how the card shows them."""
    return _folder(tmp_path_factory.mktemp("small"), GANConfig(architecture="dcgan", conditional=True, latent_dim=16),
                   {"n": 2000, "cfid": 41.5, "recognisable": 0.25, "class_histogram": [0.1] * 10, "seed": 12345})


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A small unconditional DCGAN weights folder without metrics."""
    return _folder(tmp_path_factory.mktemp("plain"), GANConfig(architecture="dcgan", latent_dim=8, seed=1))


def _pull(server, tmp_path, repo_id="alice/m", revision="main", cache="cache", **kwargs):
    return push_pull.pull(repo_id, revision, endpoint=server.url, cache_dir=tmp_path / cache, **kwargs)


def _downloads(server) -> set[str]:
    return {path.rsplit("/", 1)[1] for method, path in server.requests if method == "GET" and "/resolve/" in path}


# --- round trips --------------------------------------------------------------------------------------------------

def test_push_then_pull_draws_the_same_digits(server, tmp_path):
    source = shipped_models()[DEFAULT_MODEL]
    pushed = push_pull.push(source, "alice/mnist", ALICE, tag="v1", endpoint=server.url)
    assert re.fullmatch(r"[0-9a-f]{40}", pushed.commit_sha) and pushed.tag == "v1" and pushed.folder is None
    assert pushed.url == f"{server.url}/alice/mnist/tree/{pushed.commit_sha}"

    files = set(HfApi(endpoint=server.url, token=False).list_repo_files("alice/mnist"))
    optional = {name for name in ("metrics.json", "discriminator.weights.h5") if (source / name).is_file()}
    assert files == {".gitattributes", "README.md", "metadata.json", "model.weights.h5", *PULLED} | optional
    manifest = json.loads(server.file("alice/mnist", "mnist_gan.json"))
    assert set(manifest["sha256"]) == files - {".gitattributes", "README.md", "mnist_gan.json"}
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256(server.file("alice/mnist", name)).hexdigest() == digest, name

    assert server.file("alice/mnist", "generator.onnx") == (source / "generator.onnx").read_bytes()  # current: as is
    original = Generator.load(source)
    # samples.png is what `python -m mnist_gan sample --seed 0 --n 64` draws from these weights
    assert server.file("alice/mnist", "samples.png") == encode_png(make_grid(original.generate(0, 64),
                                                                             *grid_shape(64), scale=2))
    card = ModelCard(server.file("alice/mnist", "README.md").decode())
    assert card.data.library_name == "keras" and card.data.pipeline_tag == "unconditional-image-generation"
    assert card.data.datasets == ["mnist"] and {"gan", "mnist"} <= set(card.data.tags)
    assert 'keras.saving.load_model("hf://alice/mnist")' in card.text and "from gradio_client import" in card.text
    assert f"| steps | {original.record['steps']} |" in card.text

    server.requests.clear()
    pulled = _pull(server, tmp_path, "alice/mnist", "v1")
    assert pulled.commit_sha == pushed.commit_sha and pulled.repo_id == "alice/mnist"
    assert _downloads(server) == PULLED | optional  # no Keras copy, no card
    copy = Generator.load(pulled.folder)
    np.testing.assert_array_equal(copy.generate(7, 32), original.generate(7, 32))
    assert copy.config == original.config and copy.record == original.record
    assert _pull(server, tmp_path, "alice/mnist", pushed.commit_sha).folder == pulled.folder


def test_the_discriminator_travels_with_the_model(server, tmp_path, plain):
    source = shipped_models()["classic"]  # shipped with its discriminator
    pushed = push_pull.push(source, "alice/with-d", ALICE, endpoint=server.url)
    manifest = json.loads(server.file("alice/with-d", "mnist_gan.json"))
    assert manifest["sha256"]["discriminator.weights.h5"] == hashlib.sha256(
        (source / "discriminator.weights.h5").read_bytes()).hexdigest()
    folder = _pull(server, tmp_path, "alice/with-d", pushed.commit_sha).folder
    images = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(load_discriminator(folder)(images)),
                                  np.asarray(load_discriminator(source)(images)))
    push_pull.push(plain, "alice/no-d", ALICE, endpoint=server.url)  # an older folder without D still pushes and pulls
    folder = _pull(server, tmp_path, "alice/no-d").folder
    assert not (folder / "discriminator.weights.h5").exists()
    with pytest.raises(WeightsError, match="has no discriminator weights .*need a model saved with its discriminator"):
        load_discriminator(folder)
    server.tamper("alice/with-d", "discriminator.weights.h5")
    with pytest.raises(HubError, match="discriminator.weights.h5 of alice/with-d@.* does not match the sha256"):
        _pull(server, tmp_path, "alice/with-d", cache="other-cache")


@pytest.mark.slow
def test_keras_loads_the_pushed_repo_from_hf_url(server, tmp_path):
    source = shipped_models()[DEFAULT_MODEL]
    push_pull.push(source, "alice/mnist", ALICE, endpoint=server.url)
    server.page_size = 4  # Keras lists the whole repo: make it follow the tree's Link header across pages
    server.requests.clear()
    generator = Generator.load(source)
    z = np.random.default_rng(1).standard_normal((8, generator.config.latent_dim)).astype(np.float32)
    k = generator.config.latent_code  # the default model's second input is z's latent code, as its card says
    labels = (z[:, :k].argmax(axis=1) if k else np.arange(8) % 10).astype(np.int32)[:, None]
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "labels.npy", labels)
    code = ("import sys, numpy as np, keras\n"
            "model = keras.saving.load_model('hf://alice/mnist')\n"
            "z, labels = np.load(sys.argv[1]), np.load(sys.argv[1].replace('z.npy', 'labels.npy'))\n"
            "inputs = [z, labels] if len(model.inputs) == 2 else z\n"
            "np.save(sys.argv[2], np.asarray(model(inputs, training=False)))\n")
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    out = subprocess.run([sys.executable, "-c", code, tmp_path / "z.npy", tmp_path / "images.npy"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    want = generator.images(z, labels if generator.config.conditional else None)
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), want, atol=1e-5)
    assert sum(1 for method, path in server.requests if "/tree/" in path) >= 3


def test_conditional_round_trip_with_metrics_on_the_card(server, tmp_path, small):
    pushed = push_pull.push(small, "alice/m", ALICE, endpoint=server.url)
    pulled = _pull(server, tmp_path, revision=pushed.commit_sha)
    original, copy = Generator.load(small), Generator.load(pulled.folder)
    labels = np.arange(20) % 10
    np.testing.assert_array_equal(copy.generate(5, 20, labels), original.generate(5, 20, labels))
    assert copy.metrics == original.metrics and "metrics.json" in _downloads(server)

    card = ModelCard(server.file("alice/m", "README.md").decode())
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"cfid", "recognisable"}  # N, the seed and the histogram are not scores
    assert results["cfid"].metric_value == 41.5 and results["cfid"].metric_name == "cfid (N=2000)"

    # Keras's own layout of a conditional generator loads and takes [z, digit] as the card shows
    import keras

    keras_dir = tmp_path / "keras"
    keras_dir.mkdir()
    for name in ("config.json", "metadata.json", "model.weights.h5"):
        (keras_dir / name).write_bytes(server.file("alice/m", name))
    assert 'labels = (np.arange(16) % 10).astype("int32")[:, None]' in card.text
    assert "generator.predict([z, labels], verbose=0)" in card.text
    z = np.random.default_rng(2).standard_normal((16, 16)).astype(np.float32)
    digits = (np.arange(16) % 10)[:, None]
    np.testing.assert_allclose(keras.saving.load_model(keras_dir).predict([z, digits], verbose=0),
                               original.images(z, digits[:, 0]), atol=1e-5)


def test_a_new_push_replaces_the_model_and_tags_stay(server, tmp_path, small, plain):
    first = push_pull.push(small, "alice/m", ALICE, tag="v1", endpoint=server.url)
    with pytest.raises(HubError, match="already has a tag 'v1'.*nothing was pushed"):
        push_pull.push(plain, "alice/m", ALICE, tag="v1", endpoint=server.url)
    assert HfApi(endpoint=server.url, token=False).model_info("alice/m").sha == first.commit_sha
    second = push_pull.push(plain, "alice/m", ALICE, endpoint=server.url)
    assert "metrics.json" not in HfApi(endpoint=server.url, token=False).list_repo_files("alice/m")  # stale: removed
    assert _pull(server, tmp_path).commit_sha == second.commit_sha
    assert Generator.load(_pull(server, tmp_path).folder).config == Generator.load(plain).config
    assert Generator.load(_pull(server, tmp_path, revision="v1").folder).config == Generator.load(small).config


# --- integrity and safe loading -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["generator.weights.h5", "gan_config.json", "config.json", "generator.onnx"])
def test_a_file_altered_on_the_server_is_refused(server, tmp_path, plain, name):
    push_pull.push(plain, "alice/m", ALICE, endpoint=server.url)
    server.tamper("alice/m", name)
    with pytest.raises(HubError, match=rf"{re.escape(name)} of alice/m@[0-9a-f]{{12}} does not match the sha256 "
                                       r"recorded when it was pushed .* not loaded"):
        _pull(server, tmp_path)


def test_a_file_altered_in_the_local_cache_is_refused(server, tmp_path, plain):
    pushed = push_pull.push(plain, "alice/m", ALICE, endpoint=server.url)
    weights = (_pull(server, tmp_path, revision=pushed.commit_sha).folder / "generator.weights.h5").resolve()
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(HubError, match="generator.weights.h5 .* does not match the sha256"):
        _pull(server, tmp_path, revision=pushed.commit_sha)


def _publish(server, repo_id: str, files: dict[str, bytes], manifest: bool = True) -> None:
    """A repo written by hand, not by push_pull.push, with a manifest that matches its files."""
    if manifest:
        sha256 = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        files = {**files, "mnist_gan.json": json.dumps({"format": "mnist-gan", "version": 1,
                                                        "sha256": sha256}).encode()}
    api = HfApi(endpoint=server.url, token=ALICE)
    api.create_repo(repo_id)
    api.create_commit(repo_id, [CommitOperationAdd(name, data) for name, data in files.items()],
                      commit_message="written by hand")


def _keras_config(model, tmp_path) -> bytes:
    import keras

    keras.saving.save_model(model, tmp_path / model.name, zipped=False)
    return (tmp_path / model.name / "config.json").read_bytes()


def test_models_mnist_gan_does_not_build_are_refused(server, tmp_path, plain):
    import keras

    push_pull.push(plain, "alice/m", ALICE, endpoint=server.url)
    names = ("gan_config.json", "generator.weights.h5", "config.json", "training.json")
    good = {name: server.file("alice/m", name) for name in names}
    config = Generator.load(plain).config

    built = architectures.ARCHITECTURES[config.architecture].generator(config)
    with_lambda = keras.Model(built.inputs, keras.layers.Lambda(lambda x: x * 0.5)(built.outputs[0]), name="lam")
    _publish(server, "alice/lambda", {**good, "config.json": _keras_config(with_lambda, tmp_path)})
    with pytest.raises(HubError, match="alice/lambda@.* is refused: its Keras model has a Lambda layer, which "
                                       "carries Python code"):
        _pull(server, tmp_path, "alice/lambda")

    other = architectures.ARCHITECTURES["classic"].generator(config)  # same latent size, another network
    _publish(server, "alice/other", {**good, "config.json": _keras_config(other, tmp_path)})
    with pytest.raises(HubError, match=r"is refused: its Keras model \(config.json\) is not the dcgan generator "
                                       r"\(latent_dim=8\) its gan_config.json describes"):
        _pull(server, tmp_path, "alice/other")

    resnet = json.loads(good["gan_config.json"]) | {"architecture": "resnet"}
    _publish(server, "alice/resnet", {**good, "gan_config.json": json.dumps(resnet).encode()})
    with pytest.raises(HubError, match="is refused: its gan_config.json describes no generator this mnist-gan builds "
                                       r"\(architecture: unknown 'resnet'"):
        _pull(server, tmp_path, "alice/resnet")

    keras_only = {name: server.file("alice/m", name) for name in ("config.json", "metadata.json", "model.weights.h5")}
    _publish(server, "alice/keras", keras_only, manifest=False)
    with pytest.raises(HubError, match="alice/keras is not an mnist-gan model: it has no mnist_gan.json"):
        _pull(server, tmp_path, "alice/keras")
    with pytest.raises(HubError, match="alice/keras already holds files that are not an mnist-gan model"):
        push_pull.push(plain, "alice/keras", ALICE, endpoint=server.url)

    shipped = shipped_models()["classic"]  # an ONNX file exported from other weights
    _publish(server, "alice/onnx", {**good, **{name: (shipped / name).read_bytes()
                                               for name in ("generator.onnx", "generator.onnx.json")}})
    with pytest.raises(HubError, match="alice/onnx@.* is refused: its generator.onnx is not described by its "
                                       "generator.onnx.json or was not exported from its generator weights"):
        _pull(server, tmp_path, "alice/onnx")

    _publish(server, "alice/partial", {"gan_config.json": good["gan_config.json"], "config.json": good["config.json"]})
    with pytest.raises(HubError, match="not a complete mnist-gan model: mnist_gan.json lists no generator.weights.h5"):
        _pull(server, tmp_path, "alice/partial")


# --- tokens and errors ----------------------------------------------------------------------------------------------

def test_token_sources_in_order(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fromEnv")
    assert push_pull.resolve_token("hf_fromField", "hf_fromOauth") == "hf_fromField"
    assert push_pull.resolve_token("  ", "hf_fromOauth") == "hf_fromOauth"
    assert push_pull.resolve_token(None, None) == "hf_fromEnv"
    monkeypatch.delenv("HF_TOKEN")
    assert push_pull.resolve_token() is None and push_pull.resolve_token("", "") is None
    with pytest.raises(HubError, match="spaces or characters a token never has") as error:
        push_pull.resolve_token("hf_half pasted")
    assert "hf_half" not in str(error.value)


def test_endpoint_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert push_pull.endpoint() == "http://127.0.0.1:9"
    monkeypatch.delenv("HF_ENDPOINT")
    assert push_pull.endpoint() == "https://huggingface.co"
    for bad in ("ftp://127.0.0.1", "http://user:pw@127.0.0.1", "127.0.0.1:8000", "http://127.0.0.1/?x=1"):
        with pytest.raises(HubError, match="plain http"):
            push_pull.pull("alice/m", endpoint=bad)


@pytest.mark.parametrize("repo_id", ["alice/mnist-gan", "Org_1/m.v2", " alice/m "])
def test_valid_repo_ids(repo_id):
    assert push_pull.validate_repo_id(repo_id) == repo_id.strip()


@pytest.mark.parametrize("repo_id", ["mnist", "alice/m/extra", "../etc/passwd", "alice/..", "alice/m?x=1",
                                     "alice/m#x", "https://huggingface.co/alice/m", "alice/-m", "alice/m.git",
                                     "alice/a--b", "alice/m\nx", "", None, "a" * 97 + "/m"])
def test_invalid_repo_ids(repo_id):
    with pytest.raises(HubError, match="a repo id is owner/name"):
        push_pull.validate_repo_id(repo_id)


@pytest.mark.parametrize("revision", ["main", "v1", "refs/pr/1", "release-2.0", "a" * 40])
def test_valid_revisions(revision):
    assert push_pull.validate_revision(revision) == revision


@pytest.mark.parametrize("revision", ["", "../main", "main/../x", "a b", "x?y", "x#y", "/main", "main/", "a.lock",
                                      "%2e%2e", "-x", "x" * 129])
def test_invalid_revisions(revision):
    with pytest.raises(HubError, match="a revision is a branch, a tag or a full 40-character commit sha"):
        push_pull.validate_revision(revision)


def test_a_token_in_the_revision_field_is_not_sent(server, tmp_path):
    with pytest.raises(HubError, match="looks like an access token") as error:
        _pull(server, tmp_path, revision=ALICE)
    assert ALICE not in str(error.value) and server.requests == []


def test_the_server_rejects_writes_without_a_valid_token(server):
    for token in (False, WRONG):
        with pytest.raises(HfHubHTTPError) as error:
            HfApi(endpoint=server.url, token=token).create_repo("alice/x")
        assert error.value.response.status_code == 401
    HfApi(endpoint=server.url, token=ALICE).create_repo("alice/x")
    for token in (False, WRONG):
        with pytest.raises(HfHubHTTPError) as error:
            HfApi(endpoint=server.url, token=token).create_commit(
                "alice/x", [CommitOperationAdd("a.txt", b"a")], commit_message="x")
        assert error.value.response.status_code == 401
    assert HfApi(endpoint=server.url, token=ALICE).whoami()["name"] == "alice"


def test_clear_messages_for_each_failure(server, tmp_path, plain):
    for token in (None, "", "   "):
        with pytest.raises(HubError, match="pushing needs a Hugging Face token with write access"):
            push_pull.push(plain, "alice/m", token, endpoint=server.url)
    with pytest.raises(HubError, match=r"the Hub refused the token \(401\): it is invalid or expired"):
        push_pull.push(plain, "alice/m", WRONG, endpoint=server.url)
    for token in (ALICE_READ, BOB):  # a read-only token; another user's namespace
        with pytest.raises(HubError, match=r"the token has no write access to alice/m \(403\)"):
            push_pull.push(plain, "alice/m", token, endpoint=server.url)
    assert "alice/m" not in server.repos  # the refused pushes created nothing

    push_pull.push(plain, "alice/m", ALICE, endpoint=server.url)
    with pytest.raises(HubError, match=r"the Hub refused the token \(401\)"):
        _pull(server, tmp_path, token=WRONG)
    with pytest.raises(HubError, match=r"the token has no write access to alice/m \(403\)"):
        push_pull.push(plain, "alice/m", ALICE_READ, endpoint=server.url)
    with pytest.raises(HubError, match=rf"repo alice/nope not found on {re.escape(server.url)}: check its name"):
        _pull(server, tmp_path, "alice/nope")
    with pytest.raises(HubError, match="revision 'v9' not found in alice/m: use a branch, a tag or a full"):
        _pull(server, tmp_path, revision="v9")
    with pytest.raises(HubError, match=f"revision '{'0' * 40}' not found in alice/m"):
        _pull(server, tmp_path, revision="0" * 40)
    with pytest.raises(HubError, match="cannot push .*nowhere: no gan_config.json"):
        push_pull.push(tmp_path / "nowhere", "alice/m", ALICE, endpoint=server.url)


def test_private_repos(server, tmp_path, plain):
    pushed = push_pull.push(plain, "alice/secret", ALICE, private=True, endpoint=server.url)
    for token in (None, BOB):
        with pytest.raises(HubError, match="repo alice/secret not found .* a private repo also needs a token"):
            _pull(server, tmp_path, "alice/secret", token=token)
    assert _pull(server, tmp_path, "alice/secret", token=ALICE).commit_sha == pushed.commit_sha

    push_pull.push(plain, "alice/public", ALICE, endpoint=server.url)
    with pytest.raises(HubError, match="alice/public exists and is public, so pushing would publish the model"):
        push_pull.push(plain, "alice/public", ALICE, private=True, endpoint=server.url)


def test_with_the_hub_down_only_a_cached_pinned_sha_loads(server, tmp_path, plain):
    pushed = push_pull.push(plain, "alice/m", ALICE, tag="v1", endpoint=server.url)
    url = server.url
    warm = _pull(server, tmp_path, revision=pushed.commit_sha)
    _pull(server, tmp_path, revision="v1")  # main and v1 are in the cache too now, as the same commit
    server.stop()

    started = time.monotonic()
    offline = push_pull.pull("alice/m", pushed.commit_sha, endpoint=url, cache_dir=tmp_path / "cache")
    assert offline.folder == warm.folder and offline.commit_sha == pushed.commit_sha
    np.testing.assert_array_equal(Generator.load(offline.folder).generate(3, 8), Generator.load(plain).generate(3, 8))
    for revision in ("main", "v1", "f" * 40):
        with pytest.raises(HubError, match=rf"the Hub at {re.escape(url)} is unreachable; only a full commit sha "
                                           "pulled before can load without it"):
            push_pull.pull("alice/m", revision, endpoint=url, cache_dir=tmp_path / "cache")
    with pytest.raises(HubError, match="is unreachable"):
        push_pull.push(plain, "alice/m", ALICE, endpoint=url)
    assert time.monotonic() - started < 20  # refused connections fail at once, without the client's retry waits


def test_tokens_never_reach_output_errors_or_files(server, tmp_path, plain, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    push_pull.push(plain, "alice/m", ALICE, endpoint=server.url)
    _pull(server, tmp_path, token=ALICE)
    failures = [lambda: push_pull.push(plain, "alice/m", WRONG, endpoint=server.url),
                lambda: push_pull.push(plain, "alice/m", ALICE_READ, endpoint=server.url),
                lambda: _pull(server, tmp_path, revision="v9", token=ALICE),
                lambda: _pull(server, tmp_path, "alice/none", token=WRONG)]
    reports = []
    for failure in failures:
        with pytest.raises(HubError) as error:
            failure()
        reports.append("".join(traceback.format_exception(error.value)))
    out, err = capfd.readouterr()
    text = "\n".join([out, err, caplog.text, *reports])
    files = [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) > 5
    for token in (ALICE, ALICE_READ, WRONG):
        assert token not in text
        assert token.encode() not in server.all_stored_bytes()
        assert not any(token.encode() in data for data in files)


# --- CLI ----------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_push_and_pull(server, tmp_path, plain):
    def cli(*args, token=None):
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1"}
        env.pop("HF_TOKEN", None)
        if token:
            env["HF_TOKEN"] = token
        out = run_cli(*args, env=env)
        assert ALICE not in out.stdout + out.stderr
        return out

    out = cli("push", "alice/cli", "--weights", plain, "--tag", "v1", token=ALICE)
    assert out.returncode == 0, out.stderr[-3000:]
    sha = re.search(r"to alice/cli at ([0-9a-f]{40}) \(tag v1\)", out.stdout).group(1)
    assert f"{server.url}/alice/cli/tree/{sha}" in out.stdout

    out = cli("pull", "alice/cli", "--revision", "v1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"pulled alice/cli at {sha}: a dcgan generator (latent_dim=8), every file checked" in out.stdout
    folder = out.stdout.splitlines()[1]
    np.testing.assert_array_equal(Generator.load(folder).generate(4, 8), Generator.load(plain).generate(4, 8))

    out = cli("push", "alice/cli", "--weights", plain)
    assert out.returncode == 2 and "error: pushing needs a Hugging Face token" in out.stderr
    assert "Traceback" not in out.stderr


# --- the real Hub -------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not (os.environ.get("HF_TOKEN") and os.environ.get("MNIST_GAN_LIVE_HUB") == "1"),
                    reason="round trip against the real Hub: set HF_TOKEN and MNIST_GAN_LIVE_HUB=1 "
                           "(and MNIST_GAN_LIVE_REPO=owner/name to choose the private test repo)")
def test_live_hub_round_trip(tmp_path, plain):
    token = push_pull.resolve_token()
    repo_id = os.environ.get("MNIST_GAN_LIVE_REPO") or (
        HfApi(endpoint=push_pull.endpoint(), token=token).whoami()["name"] + "/mnist-gan-test")
    pushed = push_pull.push(plain, repo_id, token, private=True)
    pulled = push_pull.pull(repo_id, pushed.commit_sha, token=token, cache_dir=tmp_path)
    assert pulled.commit_sha == pushed.commit_sha
    np.testing.assert_array_equal(Generator.load(pulled.folder).generate(4, 8), Generator.load(plain).generate(4, 8))
