"""Publish generators to the Hugging Face Hub and load them back, verified, without ever running a repo's code.

A pushed repo holds, in one commit: Keras's own layout of the generator (config.json, metadata.json,
model.weights.h5), so anyone can `keras.saving.load_model("hf://owner/name")`; the weights folder this package
loads (gan_config.json, generator.weights.h5, training.json, metrics.json); the generator as ONNX
(generator.onnx and the JSON that describes it, exported from these weights); samples.png; the model card
(README.md); the run's TensorBoard event files under runs/ when the model came from a run that wrote them; and
mnist_gan.json, which records the sha256 of every other file.

A pull resolves the revision to a commit sha, checks the files' sizes from the Hub's metadata, downloads only the
files the package loads, checks each against mnist_gan.json, reads every JSON file as untrusted (size, depth, type),
refuses models the package does not build itself (Lambda or custom layers, another architecture), inspects each
weights file before Keras reads it (weights_file), and loads the weights into the models built from
gan_config.json. Any failure inside a pull is a HubError. Tokens go to the Hub and nowhere else, and are masked out
of every message the Hub sends back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit

import httpx2
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from mnist_gan.atomic_files import MAX_JSON_BYTES, file_sha256, load_json
from mnist_gan.config import CONFIG_FILE, GANConfig
from mnist_gan.errors import ConfigError, HubError, MnistGanError, log, shown
from mnist_gan.images import encode_png, grid_shape, make_grid
from mnist_gan.model.generator import (
    DISCRIMINATOR_FILE,
    METRICS_FILE,
    RECORD_FILE,
    SAMPLES_FILE,
    WEIGHTS_FILE,
    Generator,
    describe,
    load_discriminator,
    load_generator,
)
from mnist_gan.model.onnx_export import ONNX_FILE, ONNX_INFO, current_info, export
from mnist_gan.run_folder import run_of, tensorboard_files

from .model_card import MANIFEST, SAMPLE_COUNT, SAMPLE_SCALE, SAMPLE_SEED, model_card

DEFAULT_ENDPOINT = "https://huggingface.co"
FORMAT, FORMAT_VERSION = "mnist-gan", 1
KERAS_CONFIG = "config.json"
KERAS_FILES = (KERAS_CONFIG, "metadata.json", "model.weights.h5")  # Keras's own unzipped saved-model layout
RUNS = "runs"  # the run's TensorBoard event files go under runs/RUN_NAME/: the Hub's "Training metrics" tab
NEEDED = (CONFIG_FILE, WEIGHTS_FILE, KERAS_CONFIG)  # what a pull must get to build, check and load the generator
OPTIONAL = (DISCRIMINATOR_FILE, RECORD_FILE, METRICS_FILE, SAMPLES_FILE, ONNX_FILE, ONNX_INFO)
# The most a pull downloads of each file, checked from the Hub's metadata first: weights files are then inspected
# against the model itself (a pushed generator or discriminator is 1-10 MB, its ONNX file as large as its
# weights); samples.png is ~40 kB.
MAX_BYTES = {WEIGHTS_FILE: 64 << 20, DISCRIMINATOR_FILE: 64 << 20, ONNX_FILE: 64 << 20, SAMPLES_FILE: 4 << 20}
MAX_MANIFEST_BYTES = 64 << 10
EMPTY_REPO_FILES = {".gitattributes", "README.md"}  # what a freshly created repo may already hold

_SHA = re.compile(r"[0-9a-f]{40}")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"{_NAME}/{_NAME}")
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
_TOKEN = re.compile(r"(hf|api_org)_[A-Za-z0-9]{20,}")  # user and organisation access tokens


@dataclass(frozen=True)
class HubResult:
    repo_id: str
    commit_sha: str  # full 40-hex sha: the pushed commit, or the revision a pull resolved to
    url: str  # the repo at that commit
    folder: Path | None  # pull: a verified weights folder for weights.Generator.load
    tag: str | None = None


def endpoint() -> str:
    """The Hub's URL: $HF_ENDPOINT (read now, not at import) or https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")


def resolve_token(field: str | None = None, oauth_token: str | None = None, environment: bool = True) -> str | None:
    """The token to use: the token field, else the Spaces OAuth login, else $HF_TOKEN (only with `environment`:
    a visitor of a public Space must never spend its owner's token); None when there is none."""
    for candidate in (field, oauth_token, os.environ.get("HF_TOKEN") if environment else None):
        if candidate is not None and not isinstance(candidate, str):  # e.g. a number sent to the API
            raise HubError("a token is text, such as hf_...")
        if candidate and candidate.strip():
            return _check_token(candidate)
    return None


def validate_repo_id(repo_id: str) -> str:
    """`owner/name` as the Hub spells repo ids, or a HubError (nothing that could leave the repo's URL)."""
    repo_id = repo_id.strip() if isinstance(repo_id, str) else ""
    if any(_TOKEN.fullmatch(part) for part in repo_id.split("/")):  # it would travel in a URL, into logs
        raise HubError("that looks like an access token, not a repo id: put tokens only in the token field")
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id or repo_id.endswith(".git"):
        raise HubError("a repo id is owner/name, e.g. alice/mnist-gan: letters, digits, '-', '_' and '.', "
                       "at most 96 characters each")
    return repo_id


def validate_revision(revision: str) -> str:
    """A branch, tag or full commit sha, or a HubError."""
    revision = revision.strip() if isinstance(revision, str) else ""
    if revision.startswith(("hf_", "api_org_")):  # a token pasted in the wrong field must not travel in a URL
        raise HubError("that looks like an access token, not a revision: put tokens only in the token field")
    if not (len(revision) <= 128 and _REF.fullmatch(revision)) or ".." in revision or revision.endswith(".lock"):
        raise HubError("a revision is a branch, a tag or a full 40-character commit sha, e.g. main or v1")
    return revision


# --- push -------------------------------------------------------------------------------------------------------

def push(folder: str | Path, repo_id: str, token: str | None, *, private: bool = False, tag: str | None = None,
         endpoint: str | None = None) -> HubResult:
    """Publish a weights folder to `repo_id` (created if needed) in one commit, optionally tagged."""
    repo_id = validate_repo_id(repo_id)
    if not (token and token.strip()):
        raise HubError("pushing needs a Hugging Face token with write access: paste one in the token field, "
                       "log in, or set HF_TOKEN")
    token = _check_token(token)
    if tag is not None:
        tag = validate_revision(tag)
        if _SHA.fullmatch(tag):
            raise HubError("a tag that looks like a commit sha would be ambiguous: choose a name such as v1")
    url = _endpoint(endpoint)
    api = HfApi(endpoint=url, token=token)
    with tempfile.TemporaryDirectory(prefix="mnist-gan-push-") as staging:
        staging = Path(staging)
        config = _stage(Path(folder), staging, repo_id)
        names = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        with _explained("push", repo_id, None, url, token):
            try:
                info = api.model_info(repo_id)
            except RepositoryNotFoundError:
                api.create_repo(repo_id, private=private)
                info = api.model_info(repo_id)
            existing = {s.rfilename for s in info.siblings or []}
            if existing - EMPTY_REPO_FILES and MANIFEST not in existing:
                raise HubError(f"{repo_id} already holds files that are not an mnist-gan model; "
                               "push to a new repo so nothing of it is overwritten")
            if private and not info.private:
                raise HubError(f"{repo_id} exists and is public, so pushing would publish the model; make the repo "
                               "private on the Hub first, or push without 'private'")
            if tag and tag in {ref.name for ref in api.list_repo_refs(repo_id).tags}:
                raise HubError(f"{repo_id} already has a tag {shown(tag)}: choose another name (nothing was pushed)")
            # A file of an earlier push that this model lacks (e.g. metrics.json) would describe the wrong model.
            # So would an earlier run's TensorBoard files on the Hub's "Training metrics" tab.
            stale = [CommitOperationDelete(name) for name in sorted(existing - set(names))
                     if name in OPTIONAL or name.startswith(f"{RUNS}/")]
            commit = api.create_commit(repo_id, [CommitOperationAdd(name, str(staging / name)) for name in names]
                                       + stale, commit_message=f"Upload {describe(config)} with mnist-gan")
            if tag:
                api.create_tag(repo_id, tag=tag, revision=commit.oid)
    return HubResult(repo_id, commit.oid, _tree_url(url, repo_id, commit.oid), None, tag)


def _stage(folder: Path, staging: Path, repo_id: str) -> GANConfig:
    """Write every file of the repo into `staging`: mnist_gan.json records the sha256 of all but the card.
    A model that came from a run with TensorBoard event files (the run folder itself, or its best/) takes them
    along under runs/RUN_NAME/; a pull never needs them."""
    try:
        generator = Generator.load(folder)
        if (folder / DISCRIMINATOR_FILE).is_file():
            load_discriminator(folder, generator.config)  # what is pushed must load
    except MnistGanError as e:
        raise HubError(f"cannot push {folder.name}: {e}") from None
    import keras

    for name in (CONFIG_FILE, WEIGHTS_FILE, DISCRIMINATOR_FILE, RECORD_FILE, METRICS_FILE):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, staging / name)
    if current_info(folder) is not None:  # exported from these very weights (the shipped models')
        for name in (ONNX_FILE, ONNX_INFO):
            shutil.copyfile(folder / name, staging / name)
    else:
        try:
            export(generator, staging)
        except MnistGanError as e:
            raise HubError(f"cannot push {folder.name}: {e}") from None
    keras_dir = staging / "keras"  # Keras also writes an empty assets/ folder, which the repo does not need
    keras.saving.save_model(generator.model, keras_dir, zipped=False)
    for name in KERAS_FILES:
        (keras_dir / name).replace(staging / name)
    shutil.rmtree(keras_dir)
    digits = generator.generate(SAMPLE_SEED, SAMPLE_COUNT)
    (staging / SAMPLES_FILE).write_bytes(encode_png(make_grid(digits, *grid_shape(SAMPLE_COUNT), scale=SAMPLE_SCALE)))
    run = run_of(folder)
    for path in tensorboard_files(run) if run else []:
        (staging / RUNS / run.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, staging / RUNS / run.name / path.name)
    sha256 = {p.relative_to(staging).as_posix(): file_sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    (staging / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": FORMAT_VERSION,
                                                "generator": describe(generator.config), "sha256": sha256},
                                               indent=2) + "\n")
    (staging / "README.md").write_text(model_card(repo_id, generator.config, generator.record, generator.metrics,
                                                  sha256))
    return generator.config


# --- pull -------------------------------------------------------------------------------------------------------

def pull(repo_id: str, revision: str = "main", *, token: str | None = None, endpoint: str | None = None,
         cache_dir: str | Path | None = None) -> HubResult:
    """Download `repo_id` at `revision`, verify every file and check the model; the result's folder loads it."""
    repo_id, revision = validate_repo_id(repo_id), validate_revision(revision)
    try:
        return _pull(repo_id, revision, token, endpoint, cache_dir)
    except MnistGanError:
        raise
    except (Exception, RecursionError) as e:  # a crafted repo must cost a message, never the app: log the bug
        log.warning("pull of %s@%s failed", repo_id, revision, exc_info=e)
        raise HubError(f"{repo_id}@{shown(revision)} could not be read ({type(e).__name__}); nothing of it was "
                       "loaded") from None


def _pull(repo_id: str, revision: str, token: str | None, endpoint: str | None,
          cache_dir: str | Path | None) -> HubResult:
    token = _check_token(token) if token and token.strip() else None
    url = _endpoint(endpoint)
    api = HfApi(endpoint=url, token=token or False)  # False: anonymous, never a login stored on this machine

    def fetch(name: str, sha: str, offline: bool = False) -> Path:
        return Path(hf_hub_download(repo_id, name, revision=sha, endpoint=url, token=token or False,
                                    cache_dir=cache_dir, local_files_only=offline))

    with _explained("pull", repo_id, revision, url, token):
        sha = revision if _SHA.fullmatch(revision) else None
        folder = _cached(fetch, sha) if sha else None  # only a full sha is immutable, so only it may skip the Hub
        if folder is None:
            sha = api.model_info(repo_id, revision=revision).sha
            if not _sizes(api, repo_id, sha, [MANIFEST]):
                raise HubError(f"{repo_id} is not an mnist-gan model: it has no {MANIFEST} "
                               "(push one with `python -m mnist_gan push`)")
            manifest = fetch(MANIFEST, sha)
            wanted = _wanted(_read_manifest(manifest, repo_id))
            sizes = _sizes(api, repo_id, sha, wanted)  # before downloading: the manifest is the uploader's word
            for name in wanted:
                if name not in sizes:
                    raise HubError(f"{repo_id}@{sha[:12]} lists {name} in its {MANIFEST} but does not hold it")
                fetch(name, sha)
            folder = manifest.parent
    where = f"{repo_id}@{sha[:12]}"
    recorded = _read_manifest(folder / MANIFEST, where)
    for name in _wanted(recorded):
        actual = file_sha256(folder / name)
        if actual != recorded[name]:
            raise HubError(f"{name} of {where} does not match the sha256 recorded when it was pushed (expected "
                           f"{recorded[name][:12]}…, got {actual[:12]}…): it was altered or corrupted, so it was "
                           "not loaded")
    _check_model(folder, where)
    return HubResult(repo_id, sha, _tree_url(url, repo_id, sha), folder)


def _cached(fetch, sha: str) -> Path | None:
    """The cache's folder for commit `sha` when it already holds every file a pull needs, else None."""
    try:
        manifest = fetch(MANIFEST, sha, offline=True)
        for name in _wanted(_read_manifest(manifest, "the cached copy")):
            fetch(name, sha, offline=True)
    except (LocalEntryNotFoundError, HubError):
        return None
    return manifest.parent


def _sizes(api: HfApi, repo_id: str, sha: str, names: list[str]) -> dict[str, int]:
    """The sizes of those of `names` the commit holds, from the Hub's metadata; a HubError for any too large."""
    sizes = {info.path: info.size for info in api.get_paths_info(repo_id, names, revision=sha)
             if getattr(info, "size", None) is not None}
    for name, size in sizes.items():
        limit = MAX_MANIFEST_BYTES if name == MANIFEST else MAX_BYTES.get(name, MAX_JSON_BYTES)
        if size > limit:
            raise HubError(f"{repo_id}@{sha[:12]} is refused: its {name} is {size:,} bytes, more than the "
                           f"{limit:,} an mnist-gan model's has")
    return sizes


def _json(path: Path, where: str, max_bytes: int = MAX_JSON_BYTES) -> dict:
    """A JSON file of a pulled repo, read as untrusted (size, depth, an object at the top), or a HubError."""
    try:
        return load_json(path, max_bytes=max_bytes)
    except (OSError, ValueError) as e:
        raise HubError(f"{where} is refused: its {path.name} cannot be used ({e})") from None


def _read_manifest(path: Path, where: str) -> dict[str, str]:
    """mnist_gan.json's file -> sha256 map, checked for shape."""
    data = _json(path, where, MAX_MANIFEST_BYTES)
    if data.get("format") != FORMAT:
        raise HubError(f"{where} is not an mnist-gan model: its {MANIFEST} is not one mnist-gan writes")
    if data.get("version") != FORMAT_VERSION:
        raise HubError(f"{where} was pushed in format version {shown(data.get('version'))}; this mnist-gan reads "
                       f"version {FORMAT_VERSION}")
    sha256 = data.get("sha256")
    if not (isinstance(sha256, dict) and all(isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
                                             for v in sha256.values())):
        raise HubError(f"{where}: {MANIFEST} does not record a sha256 for each file")
    missing = [name for name in NEEDED if name not in sha256]
    if missing:
        raise HubError(f"{where} is not a complete mnist-gan model: {MANIFEST} lists no {', '.join(missing)}")
    return sha256


def _wanted(sha256: dict[str, str]) -> list[str]:
    """The files a pull downloads and checks: those the package loads, and the optional ones the repo has."""
    return [*NEEDED, *(name for name in OPTIONAL if name in sha256)]


def _check_model(folder: Path, where: str) -> None:
    """Refuse what this package does not build itself; the weights only ever go into code-built models."""
    keras_config = _json(folder / KERAS_CONFIG, where)
    for name in (RECORD_FILE, METRICS_FILE, ONNX_INFO):  # shown on the page and in /models: objects, or nothing
        if (folder / name).is_file():
            _json(folder / name, where)
    if (folder / ONNX_FILE).is_file() and current_info(folder) is None:
        raise HubError(f"{where} is refused: its {ONNX_FILE} is not described by its {ONNX_INFO} or was not "
                       "exported from its generator weights")
    classes = set(_class_names(keras_config))
    if "Lambda" in classes:
        raise HubError(f"{where} is refused: its Keras model has a Lambda layer, which carries Python code; "
                       "mnist-gan loads only generators it builds itself")
    try:
        config, model = load_generator(folder)
        if (folder / DISCRIMINATOR_FILE).is_file():
            load_discriminator(folder, config)
    except ConfigError as e:
        raise HubError(f"{where} is refused: its {CONFIG_FILE} describes no generator this mnist-gan builds "
                       f"({e})") from None
    except MnistGanError as e:
        raise HubError(f"{where} is refused: its weights are not the models its {CONFIG_FILE} describes ({e})"
                       ) from None
    built = [layer.__class__.__name__ for layer in model.layers]
    layers = keras_config.get("config", {}).get("layers", []) if isinstance(keras_config.get("config"), dict) else []
    stored = [layer.get("class_name") if isinstance(layer, dict) else None for layer in layers] \
        if isinstance(layers, list) else []
    if built != stored:
        raise HubError(f"{where} is refused: its Keras model ({KERAS_CONFIG}) is not the {describe(config)} its "
                       f"{CONFIG_FILE} describes, so the weights may not mean what the config says")


def _class_names(node) -> list[str]:
    """Every class_name in a Keras config, nested ones included."""
    if isinstance(node, dict):
        own = [node["class_name"]] if isinstance(node.get("class_name"), str) else []
        return own + [name for value in node.values() for name in _class_names(value)]
    if isinstance(node, list):
        return [name for value in node for name in _class_names(value)]
    return []


# --- shared -----------------------------------------------------------------------------------------------------

def _check_token(token: str) -> str:
    token = token.strip()
    if not (token.isascii() and token.isprintable()) or " " in token or len(token) > 256:
        raise HubError("the token contains spaces or characters a token never has: paste it again")
    return token


def masked(text: str, token: str | None) -> str:
    """`text` with every copy of `token` replaced by ***, in any letter case and however URL-encoded (a Hub may
    echo credentials back in its error messages). Mask first, cut after: a cut token could no longer be found."""
    if not token:
        return text
    for _ in range(3):  # decoded until stable: %68%66%5F... and %2568... are the token too
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return re.sub(re.escape(token), "***", text, flags=re.IGNORECASE)


def _endpoint(url: str | None) -> str:
    url = (url or endpoint()).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc or parts.query:
        raise HubError("the Hub endpoint must be a plain http(s) URL such as https://huggingface.co")
    return url


def _tree_url(url: str, repo_id: str, sha: str) -> str:
    return f"{url}/{repo_id}/tree/{sha}"




_LOST_PUSH = ("the Hub at {url} is unreachable: the connection failed during the push to {repo_id}, so the push "
              "was not completed (a commit is all or nothing: the repo holds the previous model or this one, never "
              "a mix); push again to retry")


@contextmanager
def _explained(action: str, repo_id: str, revision: str | None, url: str, token: str | None):
    """Turn the client's exceptions into one plain HubError; messages are built here, so no token can slip in."""
    try:
        yield
    except RevisionNotFoundError:
        raise HubError(f"revision {shown(revision)} not found in {repo_id}: use a branch, a tag or a full 40-character "
                       "commit sha") from None
    except RepositoryNotFoundError:
        raise HubError(f"repo {repo_id} not found on {url}: check its name; a private repo also needs a token "
                       "that can read it") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise HubError(f"the Hub refused the token (401): it is invalid or expired; create one at "
                           f"{url}/settings/tokens") from None
        if status == 403 and action == "push":
            raise HubError(f"the token has no write access to {repo_id} (403): use a token with the write role, "
                           "for your own namespace or an organisation you can write to") from None
        server = (masked(e.server_message or "", token).strip().splitlines() or [""])[0][:200]
        raise HubError(f"the Hub answered {status} to the {action} of {repo_id}" + (f": {server}" if server else "")
                       ) from None
    except (httpx2.TransportError, LocalEntryNotFoundError, OfflineModeIsEnabled):
        if action == "push":
            raise HubError(_LOST_PUSH.format(url=url, repo_id=repo_id)) from None
        raise HubError(f"the Hub at {url} is unreachable; only a full commit sha pulled before can load "
                       "without it") from None
    except HubError:
        raise
    except RuntimeError as e:  # the client wraps a failed LFS upload ("Error while uploading 'x' to the Hub.")
        if action != "push" or not isinstance(e.__cause__, (httpx2.TransportError, HfHubHTTPError)):
            raise
        raise HubError(_LOST_PUSH.format(url=url, repo_id=repo_id)) from None


def drop_snapshot(snapshot: Path) -> None:
    """Delete one commit's snapshot from a huggingface_hub cache: its links, and the blobs no other snapshot uses."""
    repo = snapshot.parent.parent
    blobs = {link.resolve() for link in snapshot.rglob("*") if link.is_symlink()}
    shutil.rmtree(snapshot, ignore_errors=True)
    still_used = {link.resolve() for link in (repo / "snapshots").rglob("*") if link.is_symlink()}
    for blob in blobs - still_used:
        blob.unlink(missing_ok=True)
