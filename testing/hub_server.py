"""A local Hugging Face Hub-compatible server for the tests: stdlib only, in memory, 127.0.0.1 only.

It answers the endpoints huggingface_hub 2.4 uses to create, push to and pull from model repos (see
../shared/docs/hub.md): create repo, validate-yaml, preupload, classic LFS batch/upload/verify, commit (ndjson),
tags and refs, repo info, tree (paged), paths-info, resolve (HEAD and GET, with the Hub's headers) and whoami; and
the same for Space repos (under /api/spaces/ and /spaces/), with a Space's variables and hardware requests.
Writes need a known token with write access to the namespace; private repos are visible to their owner only.
It never offers Xet: clients must run with Xet disabled (HF_HUB_DISABLE_XET) to upload LFS files to it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".h5", ".png", ".npz", ".bin", ".safetensors", ".keras")
LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub stores larger files in LFS whatever their name
INVALID_TOKEN = "Invalid credentials in Authorization header"  # the Hub's message; the client keys on it
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
KIND = r"(?P<kind>models|spaces)"  # the API's path for a repo type
PREFIX = r"(?P<kind>spaces/)?"  # the git and file paths: a Space's start with spaces/, a model's with nothing


def _echoed(authorization: str) -> str:
    """An error message that repeats the caller's credentials, plainly, upper-cased and percent-encoded."""
    token = authorization.removeprefix("Bearer ").strip()
    everything = "".join(f"%{byte:02X}" for byte in token.encode())
    return f"bad request for {token} ({token.upper()}; {quote(token)}; {everything}; {quote(authorization)})"


def git_oid(data: bytes) -> str:
    """Git's blob id: sha1 of a header and the content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class Entry:
    """One file of a commit: its git oid, its size, and the sha256 that keys its LFS object (None: regular)."""

    oid: str
    size: int
    lfs: str | None = None


@dataclass
class Repo:
    id: str
    private: bool
    type: str = "model"  # or "space"
    sdk: str | None = None  # a Space's
    hardware: str | None = None  # a Space's requested hardware
    variables: dict[str, dict] = field(default_factory=dict)  # a Space's variables: key -> {value, description}
    commits: dict[str, dict[str, Entry]] = field(default_factory=dict)  # sha -> path -> Entry
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None


class HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


class HubServer:
    """`with HubServer({"token": ("alice", True)}) as hub:` serves on hub.url until the block ends."""

    page_size = 50  # tree entries per page: small enough that tests can exercise the Link header

    def __init__(self, tokens: dict[str, tuple[str, bool]]):
        self.tokens = dict(tokens)  # token -> (user name, can write)
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}  # git oid -> content of regular files
        self.lfs: dict[str, bytes] = {}  # sha256 -> content of LFS files
        self.tickets: dict[str, str] = {}  # one-time LFS upload ticket -> the sha256 it may upload
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests to inspect
        self.authorizations: list[str | None] = []  # the Authorization header of every request (None: anonymous)
        # route name -> HTTP status: answer it with an error whose message echoes the caller's credentials back in
        # several spellings (as a careless proxy or server could), to test that no message carries them
        self.echo: dict[str, int] = {}
        self.drop: dict[str, str] = {}  # route name -> "before"/"after": hang up without answering, as a lost link
        self.lock = threading.RLock()
        self.counter = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection: a client's keep-alive socket must not outlive the server."""
        if self._thread is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what tests use to look inside or break things -------------------------------------------------------

    def file(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        """A stored file's bytes; a Space's repo_id is spaces/owner/name."""
        repo = self.repos[repo_id]
        return self._content(repo.commits[repo.resolve(revision)][path])

    def tamper(self, repo_id: str, path: str, revision: str = "main") -> None:
        """Flip one byte of a stored file in place (same size, same advertised hashes), as a corrupt store would."""
        with self.lock:
            repo = self.repos[repo_id]
            entry = repo.commits[repo.resolve(revision)][path]
            store, key = (self.lfs, entry.lfs) if entry.lfs else (self.blobs, entry.oid)
            data = bytearray(store[key])
            data[len(data) // 2] ^= 0xFF
            store[key] = bytes(data)

    def all_stored_bytes(self) -> bytes:
        with self.lock:
            return b"".join([*self.blobs.values(), *self.lfs.values()])

    # --- store ------------------------------------------------------------------------------------------------

    def _content(self, entry: Entry) -> bytes:
        return self.lfs[entry.lfs] if entry.lfs else self.blobs[entry.oid]

    def _add_regular(self, data: bytes) -> Entry:
        oid = git_oid(data)
        self.blobs[oid] = data
        return Entry(oid, len(data))

    def _commit(self, repo: Repo, branch: str, tree: dict[str, Entry], summary: str) -> str:
        self.counter += 1
        listing = "".join(f"{path} {entry.oid}\n" for path, entry in sorted(tree.items()))
        parent = repo.branches.get(branch, "")
        sha = hashlib.sha1(f"{parent}\n{summary}\n{listing}{self.counter}".encode()).hexdigest()
        repo.commits[sha] = tree
        repo.branches[branch] = sha
        return sha


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubServer

    def __init__(self, *args, **kwargs):
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub: the client's pooled connections must be handled
    timeout = 30  # an idle keep-alive connection frees its thread after this long
    server: _Server

    ROUTES = [
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", rf"/api/{KIND}/{REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", rf"/api/{KIND}/{REPO}/commit/(?P<rev>[^/]+)", "commit"),
        ("POST", rf"/api/{KIND}/{REPO}/tag/(?P<rev>[^/]+)", "create_tag"),
        ("GET", rf"/api/{KIND}/{REPO}/refs", "refs"),
        ("GET", rf"/api/{KIND}/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
        ("POST", rf"/api/{KIND}/{REPO}/paths-info/(?P<rev>[^/]+)", "paths_info"),
        ("GET", rf"/api/spaces/{REPO}/variables", "variables"),
        ("POST", rf"/api/spaces/{REPO}/variables", "add_variable"),
        ("POST", rf"/api/spaces/{REPO}/hardware", "request_hardware"),
        ("GET", rf"/api/{KIND}/{REPO}(?:/revision/(?P<rev>[^/]+))?", "info"),
        ("POST", rf"/{PREFIX}{REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"/lfs/upload/(?P<ticket>\w+)", "lfs_upload"),
        ("POST", r"/lfs/verify/(?P<oid>[0-9a-f]{64})", "lfs_verify"),
        ("GET", rf"/{PREFIX}{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/{PREFIX}{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    def log_message(self, *args) -> None:  # quiet; and request lines are all a log here could ever show
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.hub.requests.append((method, url.path))
        self.hub.authorizations.append(self.headers.get("Authorization"))
        try:
            body = self._read_body()
            for route_method, pattern, name in self.ROUTES:
                match = re.fullmatch(pattern, url.path)
                if route_method == method and match:
                    args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    if name in self.hub.echo:
                        raise HTTPError(self.hub.echo[name], _echoed(self.headers.get("Authorization", "")))
                    drop = self.hub.drop.get(name)
                    if drop == "before":
                        return self._hang_up()
                    if drop == "after":  # the server does the work, but the answer never arrives
                        self._send = lambda *args, **kwargs: None
                    with self.hub.lock:
                        getattr(self, name)(body, **args)
                    if drop == "after":
                        self._hang_up()
                    return
            raise HTTPError(404, f"no route for {method} {url.path}")
        except HTTPError as e:
            headers = {"X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            self._send(e.status, {"error": e.message, **(e.body or {})}, headers)

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                chunk = self.rfile.read(size + 2)[:size]  # each chunk ends with CRLF
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None,
              content_type: str = "application/json") -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # --- auth and access --------------------------------------------------------------------------------------

    def _user(self) -> tuple[str, bool] | None:
        """(name, can write) of the bearer token, None when there is none; an unknown token is a 401."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.hub.tokens:
            raise HTTPError(401, INVALID_TOKEN)
        return self.hub.tokens[token]

    def _writer(self, namespace: str) -> str:
        user = self._user()
        if user is None:
            raise HTTPError(401, "You must be authenticated to write to the Hub")
        name, can_write = user
        if not can_write or name != namespace:
            raise HTTPError(403, f"You don't have the rights to write to the namespace {namespace}")
        return name

    def _repo(self, repo_id: str, write: bool = False, kind: str | None = None) -> Repo:
        """The repo of that id and kind (the path's "models", "spaces" or "spaces/"), as the caller may see it."""
        repo = self.hub.repos.get(_key(kind, repo_id))
        user = self._writer(repo_id.split("/")[0]) if write else (self._user() or ("", False))[0]
        if repo is None or (repo.private and user != repo_id.split("/")[0]):
            raise HTTPError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_sha(self, repo: Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise HTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    # --- endpoints --------------------------------------------------------------------------------------------

    def create_repo(self, body: bytes) -> None:
        request = json.loads(body)
        repo_id = f"{request.get('organization') or (self._user() or ('',))[0]}/{request['name']}"
        self._writer(repo_id.split("/")[0])
        kind = request.get("type") or "model"
        if kind not in ("model", "space"):
            raise HTTPError(400, f"this server keeps model and space repos, not {kind}")
        if kind == "space" and not request.get("sdk"):
            raise HTTPError(400, "a Space needs an sdk (gradio, docker, static)")
        key = _key(kind + "s", repo_id)
        url = f"{self.hub.url}/{'spaces/' if kind == 'space' else ''}{repo_id}"
        if key in self.hub.repos:
            raise HTTPError(409, f"You already created this {kind} repo", body={"url": url})
        private = request.get("visibility", "private" if request.get("private") else "public") != "public"
        repo = self.hub.repos[key] = Repo(repo_id, private, kind, request.get("sdk"), request.get("hardware"))
        gitattributes = self.hub._add_regular("".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n"
                                                      for s in LFS_SUFFIXES).encode())
        self.hub._commit(repo, "main", {".gitattributes": gitattributes}, "initial commit")
        self._send(200, {"url": url, "name": repo_id})

    def validate_yaml(self, body: bytes) -> None:
        self._send(200, {"errors": [], "warnings": []})

    def whoami(self, body: bytes) -> None:
        user = self._user()
        if user is None:
            raise HTTPError(401, INVALID_TOKEN)
        name, can_write = user
        self._send(200, {"type": "user", "name": name, "fullname": name.title(), "avatarUrl": "", "auth": {
            "type": "access_token", "accessToken": {"displayName": "test", "role": "write" if can_write else "read"}}})

    def preupload(self, body: bytes, repo: str, rev: str, kind: str) -> None:
        repo = self._repo(repo, write=True, kind=kind)
        tree = repo.commits[self._commit_sha(repo, rev)]
        files = []
        for f in json.loads(body)["files"]:
            lfs = f["path"].endswith(LFS_SUFFIXES) or "tfevents" in f["path"] or f["size"] >= LFS_MIN_SIZE
            existing = tree.get(f["path"])
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": (existing.lfs or existing.oid) if existing else None})
        self._send(200, {"files": files, "commitOid": repo.resolve(rev)})

    def lfs_batch(self, body: bytes, repo: str, kind: str | None = None) -> None:
        self._repo(repo, write=True, kind=kind)
        objects = []
        for obj in json.loads(body)["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.lfs:  # already stored: no actions, the client skips the upload
                ticket = secrets.token_hex(16)
                self.hub.tickets[ticket] = obj["oid"]
                answer["actions"] = {"upload": {"href": f"{self.hub.url}/lfs/upload/{ticket}"},
                                     "verify": {"href": f"{self.hub.url}/lfs/verify/{obj['oid']}"}}
            objects.append(answer)
        self._send(200, {"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def lfs_upload(self, body: bytes, ticket: str) -> None:
        oid = self.hub.tickets.pop(ticket, None)  # the PUT carries no auth header: the ticket is the permission
        if oid is None:
            raise HTTPError(403, "unknown or used upload ticket")
        if hashlib.sha256(body).hexdigest() != oid:
            raise HTTPError(400, "uploaded content does not match its sha256")
        self.hub.lfs[oid] = body
        self._send(200, {})

    def lfs_verify(self, body: bytes, oid: str) -> None:
        self._user()
        size = json.loads(body).get("size")
        if oid not in self.hub.lfs or len(self.hub.lfs[oid]) != size:
            raise HTTPError(404, "object not uploaded")
        self._send(200, {})

    def commit(self, body: bytes, repo: str, rev: str, kind: str) -> None:
        repo = self._repo(repo, write=True, kind=kind)
        if rev not in repo.branches:
            raise HTTPError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        tree = dict(repo.commits[repo.branches[rev]])
        summary = "commit"
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary") or summary
                parent = value.get("parentCommit")
                if parent and parent != repo.branches[rev]:
                    raise HTTPError(412, "parent commit is not the head of the branch")
            elif key == "file":
                tree[value["path"]] = self.hub._add_regular(base64.b64decode(value["content"]))
            elif key == "lfsFile":
                if value["oid"] not in self.hub.lfs:
                    raise HTTPError(422, f"LFS object {value['oid']} was never uploaded")
                size = len(self.hub.lfs[value["oid"]])
                tree[value["path"]] = Entry(git_oid(lfs_pointer(value["oid"], size)), size, value["oid"])
            elif key == "deletedFile":
                if tree.pop(value["path"], None) is None:
                    raise HTTPError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                tree = {p: e for p, e in tree.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:
                raise HTTPError(400, f"unknown commit operation {key!r}")
        sha = self.hub._commit(repo, rev, tree, summary)
        self._send(200, {"commitOid": sha, "commitUrl": f"{self.hub.url}/{repo.id}/commit/{sha}",
                         "success": True, "pullRequestUrl": None})

    def create_tag(self, body: bytes, repo: str, rev: str, kind: str) -> None:
        repo = self._repo(repo, write=True, kind=kind)
        tag = json.loads(body)["tag"]
        if tag in repo.tags or tag in repo.branches:
            raise HTTPError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._commit_sha(repo, rev)
        self._send(200, {})

    def refs(self, body: bytes, repo: str, kind: str) -> None:
        repo = self._repo(repo, kind=kind)

        def refs(kind: str, names: dict[str, str]) -> list[dict]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha} for n, sha in sorted(names.items())]
        self._send(200, {"branches": refs("heads", repo.branches), "tags": refs("tags", repo.tags),
                         "converts": [], "pullRequests": []})

    def info(self, body: bytes, repo: str, kind: str, rev: str = "main") -> None:
        repo = self._repo(repo, kind=kind)
        sha = self._commit_sha(repo, rev)
        siblings = [{"rfilename": path, "size": e.size, "blobId": e.oid,
                     **({"lfs": {"sha256": e.lfs, "size": e.size, "pointerSize": len(lfs_pointer(e.lfs, e.size))}}
                        if e.lfs else {})} for path, e in sorted(repo.commits[sha].items())]
        space = {"sdk": repo.sdk, "runtime": _runtime(repo)} if repo.type == "space" else {"modelId": repo.id}
        self._send(200, {"id": repo.id, "sha": sha, "private": repo.private, "author": repo.id.split("/")[0],
                         "tags": [], "siblings": siblings, **space})

    def _entry_json(self, path: str, entry: Entry | None) -> dict:
        if entry is None:  # a directory
            return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        out = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
        if entry.lfs:
            out["lfs"] = {"oid": entry.lfs, "size": entry.size, "pointerSize": len(lfs_pointer(entry.lfs, entry.size))}
        return out

    def _listing(self, tree: dict[str, Entry], prefix: str, recursive: bool) -> list[dict]:
        """Files and directories under `prefix` ("" for the root), directories first at each level."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        entries: dict[str, Entry | None] = {}
        for path, entry in tree.items():
            if not path.startswith(base):
                continue
            parts = path[len(base):].split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    entries.setdefault(base + "/".join(parts[:depth]), None)
            if recursive or len(parts) == 1:
                entries[path] = entry
        return [self._entry_json(p, e) for p, e in sorted(entries.items(), key=lambda pe: (pe[1] is not None, pe[0]))]

    def tree(self, body: bytes, repo: str, rev: str, kind: str, path: str = "") -> None:
        repo = self._repo(repo, kind=kind)
        tree = repo.commits[self._commit_sha(repo, rev)]
        folders = {"/".join(p.split("/")[:i]) for p in tree for i in range(1, p.count("/") + 1)}
        if path and path not in folders:
            raise HTTPError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("true", "1")
        listing = self._listing(tree, path, recursive)
        start = int(self.query.get("cursor", ["0"])[0])
        page = listing[start:start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(listing):
            suffix = f"/{quote(path, safe='')}" if path else ""
            next_url = (f"{self.hub.url}/api/{repo.type}s/{repo.id}/tree/{quote(rev, safe='')}{suffix}"
                        f"?recursive={str(recursive).lower()}&cursor={start + self.hub.page_size}")
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._send(200, page, headers)

    def paths_info(self, body: bytes, repo: str, rev: str, kind: str) -> None:
        repo = self._repo(repo, kind=kind)
        tree = repo.commits[self._commit_sha(repo, rev)]
        wanted = parse_qs(body.decode()).get("paths", [])
        listing = {e["path"]: e for e in self._listing(tree, "", recursive=True)}
        self._send(200, [listing[p] for p in wanted if p in listing])

    def resolve(self, body: bytes, repo: str, rev: str, path: str, kind: str | None = None) -> None:
        repo = self._repo(repo, kind=kind)
        sha = self._commit_sha(repo, rev)
        entry = repo.commits[sha].get(path)
        if entry is None:
            raise HTTPError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        data = self.hub._content(entry)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{entry.lfs or entry.oid}"'}
        if entry.lfs:  # what the Hub sends for LFS files, before its redirect to the CDN
            headers.update({"X-Linked-Etag": f'"{entry.lfs}"', "X-Linked-Size": str(entry.size)})
        self._send(200, headers=headers, raw=data, content_type="application/octet-stream")

    # --- Spaces -----------------------------------------------------------------------------------------------

    def variables(self, body: bytes, repo: str) -> None:
        repo = self._repo(repo, write=True, kind="spaces")  # a Space's settings: its owner's to read
        self._send(200, repo.variables)

    def add_variable(self, body: bytes, repo: str) -> None:
        repo = self._repo(repo, write=True, kind="spaces")
        request = json.loads(body)
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", request.get("key") or ""):
            raise HTTPError(400, "a variable's key is upper-case letters, digits and _")
        repo.variables[request["key"]] = {"value": str(request.get("value", "")),
                                          "description": request.get("description"),
                                          "updatedAt": "2026-11-29T00:00:00.000Z"}
        self._send(200, repo.variables)

    def request_hardware(self, body: bytes, repo: str) -> None:
        repo = self._repo(repo, write=True, kind="spaces")
        repo.hardware = json.loads(body)["flavor"]
        self._send(200, _runtime(repo))


def _key(kind: str | None, repo_id: str) -> str:
    """Where a repo is kept: a model under its id, a Space under spaces/ID (a model and a Space may share an id)."""
    return f"spaces/{repo_id}" if kind and kind.startswith("space") else repo_id


def _runtime(repo: Repo) -> dict:
    """A Space's runtime as the Hub describes it: this server builds nothing, so it stays where a new Space starts."""
    return {"stage": "BUILDING", "hardware": {"current": None, "requested": repo.hardware or "cpu-basic"},
            "storage": None, "gcTimeout": None}


@contextmanager
def local_hub(monkeypatch, tokens: dict, clear=("HF_TOKEN",)):
    """A running HubServer for this process's huggingface_hub client: Xet off (the server offers none) and the
    variables in `clear` unset, so that no token or Space setting of the machine's leaks into a test."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    for name in clear:
        monkeypatch.delenv(name, raising=False)
    with HubServer(tokens) as running:
        yield running
