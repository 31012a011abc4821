"""Deploy the app to a Hugging Face Space in one commit: `python -m mnist_gan deploy-space OWNER/NAME`.

A plain `git push` of this repo is refused by the Hub (its binary files are not tracked as large files), and it
would carry the tests, the benchmarks and whatever lies in the work tree. This uploads exactly what the Space runs
(SPACE_FILES below, and the local copy of onnxruntime-web's three files when `npm ci` installed it: then the
Space serves the page's runtime itself instead of sending visitors to jsDelivr) with huggingface_hub, in one commit that also deletes what an earlier deploy left and this one
no longer has, then sets the Space's MNIST_GAN_ADMINS variable (who may train, push and pull there) and, when asked,
its hardware. The token only ever travels in the request headers: every file is checked for it (and for anything
shaped like an access token) before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from mnist_gan.errors import HubError, shown
from mnist_gan.serving import web_runtime

from .push_pull import _TOKEN, _check_token, _endpoint, _explained, validate_repo_id

ROOT = Path(__file__).resolve().parents[2]
# What the Space runs: the page, its tabs, the package with its assets, the shipped weights, the pinned
# requirements and README.md (its front matter tells the Hub the SDK, the app file and the OAuth scopes); and the
# documents README.md links to, so its links work on the Space's page (no code of the benchmarks or tests).
SPACE_FILES = ("app.py", "requirements.txt", "README.md", ".gitattributes", "bench/README.md", "bench/zoo.md",
               "bench/quality.md", "bench/quality.png")
SPACE_FOLDERS = ("ui", "mnist_gan", "weights", "docs")
SKIPPED = ("__pycache__", ".pyc", ".tmp", ".partial")  # caches and half-written files, wherever they are
ADMINS_VARIABLE = "MNIST_GAN_ADMINS"
_USER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?")  # a Hugging Face user name


@dataclass(frozen=True)
class Deployed:
    repo_id: str
    url: str  # the Space's page on the Hub
    commit_sha: str
    uploaded: int
    deleted: list[str]
    admins: str | None  # the MNIST_GAN_ADMINS it set, or None when it left the variable alone


def space_files(root: Path = ROOT) -> list[str]:
    """The repo-relative paths (posix) of every file the Space needs, sorted."""
    found = [name for name in SPACE_FILES if (root / name).is_file()]
    for folder in SPACE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not path.is_symlink() and not any(part in relative for part in SKIPPED) \
                    and not any(part.startswith(".") for part in path.relative_to(root).parts):
                found.append(relative)
    if web_runtime.is_pinned_copy(root / web_runtime.DIST):
        found += [(web_runtime.DIST / name).as_posix() for name in web_runtime.FILES.values()]
    missing = [name for name in ("app.py", "README.md", "requirements.txt") if name not in found]
    if missing:
        raise HubError(f"{root.name} is not an mnist-gan checkout: it has no {', '.join(missing)}")
    return sorted(found)


def parse_admins(text: str | None) -> str | None:
    """MNIST_GAN_ADMINS from a comma-separated list of Hugging Face user names (None: leave the variable alone)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if not _USER.fullmatch(name)]
    if bad:
        raise HubError(f"{shown(bad[0])} is not a Hugging Face user name (letters, digits and '-')")
    return ",".join(dict.fromkeys(names))


def check_no_token(root: Path, files: list[str], token: str) -> None:
    """Refuse to upload a file that holds the token, or anything shaped like an access token."""
    for name in files:
        data = (root / name).read_bytes()
        if token.encode() in data or _TOKEN.search(data.decode("latin-1")):
            raise HubError(f"{name} holds an access token (or something shaped like one): nothing was uploaded. "
                           "Remove it from the file, and revoke the token if it was ever shared")


def deploy(repo_id: str, token: str | None, *, private: bool = False, admins: str | None = None,
           hardware: str | None = None, endpoint: str | None = None, root: Path = ROOT) -> Deployed:
    """Create the Space (Gradio SDK) if needed and make its files exactly this app's, in one commit."""
    repo_id = validate_repo_id(repo_id)
    if not (token and token.strip()):
        raise HubError("deploying needs a Hugging Face token with write access: set HF_TOKEN")
    token, admins = _check_token(token), parse_admins(admins)
    url = _endpoint(endpoint)
    files = space_files(root)
    check_no_token(root, files, token)
    api = HfApi(endpoint=url, token=token)
    with _explained("push", repo_id, None, url, token):
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True,
                        space_hardware=hardware)
        info = api.repo_info(repo_id, repo_type="space")
        if private and not info.private:
            raise HubError(f"the Space {repo_id} exists and is public, so deploying would publish this app's "
                           "files there: make it private on the Hub first, or deploy without --private")
        existing = set(api.list_repo_files(repo_id, repo_type="space"))
        stale = sorted(existing - set(files))
        operations = [CommitOperationAdd(name, str(root / name)) for name in files] + \
                     [CommitOperationDelete(name) for name in stale]
        commit = api.create_commit(repo_id, operations, repo_type="space",
                                   commit_message=f"Deploy mnist-gan ({len(files)} files)")
        if admins is not None:
            api.add_space_variable(repo_id, ADMINS_VARIABLE, admins,
                                   description="Hugging Face users who may train, push and pull on this Space")
        if hardware:
            api.request_space_hardware(repo_id, hardware)
    return Deployed(repo_id, f"{url}/spaces/{repo_id}", commit.oid, len(files), stale, admins)
