"""deploy-space against the local Hub server: one commit of exactly what the Space runs, its variable, no token."""

import os
import re
import shutil

import pytest
from huggingface_hub import HfApi

from mnist_gan.errors import HubError
from mnist_gan.hub import space
from mnist_gan.serving import web_runtime
from testing.hub_server import local_hub
from testing.system import ROOT, cli

ALICE = "hf_aliceWrite4Jq8sT2vX9mN0pL6zQ"


@pytest.fixture
def server(monkeypatch):
    with local_hub(monkeypatch, {ALICE: ("alice", True)}) as running:
        yield running


def _deploy_cli(server, tmp_path, *args, token=ALICE):
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    out = cli("deploy-space", *args, env=env)
    assert ALICE not in out.stdout + out.stderr
    return out


def _head(server, key):
    return server.repos[key].branches["main"]


def test_deploy_uploads_what_the_space_runs_and_sets_its_admins(server, tmp_path):
    out = _deploy_cli(server, tmp_path, "alice/demo", "--admins", "alice, bob", "--hardware", "cpu-upgrade")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == f"{server.url}/spaces/alice/demo"
    assert "MNIST_GAN_ADMINS=alice,bob" in out.stdout
    repo = server.repos["spaces/alice/demo"]
    assert (repo.type, repo.sdk, repo.hardware) == ("space", "gradio", "cpu-upgrade")
    assert repo.variables["MNIST_GAN_ADMINS"]["value"] == "alice,bob"
    files = set(HfApi(endpoint=server.url, token=False).list_repo_files("alice/demo", repo_type="space"))
    assert files == set(space.space_files())
    assert {"app.py", "README.md", "requirements.txt", ".gitattributes", "ui/generate.py", "mnist_gan/hub/push_pull.py",
            "mnist_gan/assets/mnist_sample.npz", "weights/mlp-uncond/generator.weights.h5",
            "weights/classifier/reference.npz"} <= files
    assert {"docs/architecture.md", "bench/README.md", "bench/zoo.md"} <= files  # README's links work on the Space
    assert not [f for f in files if re.match(r"(tests|testing|runs|\.git)/", f) or "__pycache__" in f]
    assert not [f for f in files if f.startswith("bench/") and not f.endswith((".md", ".png"))]  # no bench code
    runtime = {f"node_modules/onnxruntime-web/dist/{name}" for name in web_runtime.FILES.values()}
    if web_runtime.is_pinned_copy(ROOT / web_runtime.DIST):  # npm ci's copy: the Space serves it itself
        assert runtime <= files and not [f for f in files if f.startswith("node_modules/") and f not in runtime]
    for name in files:
        assert server.file("spaces/alice/demo", name) == (ROOT / name).read_bytes(), name
    assert server.file("spaces/alice/demo", "README.md").startswith(b"---\ntitle: mnist-gan\n")
    assert ALICE.encode() not in server.all_stored_bytes()
    assert "alice/demo" not in server.repos  # a Space, not a model repo of the same name


def test_a_second_deploy_replaces_the_files_in_one_commit(server, tmp_path):
    root = tmp_path / "app"
    for name in space.space_files():
        if name.startswith("node_modules/"):  # a checkout without npm ci's copy of the runtime
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, root / name)
    first = space.deploy("alice/demo", ALICE, endpoint=server.url, root=root)
    commits = len(server.repos["spaces/alice/demo"].commits)
    (root / "mnist_gan" / "assets" / "README.md").unlink()
    (root / "ui" / "extra.py").write_text("# new\n")
    (root / "app.py").write_text((root / "app.py").read_text() + "\n# changed\n")
    second = space.deploy("alice/demo", ALICE, endpoint=server.url, root=root)
    assert second.deleted == ["mnist_gan/assets/README.md"] and second.commit_sha != first.commit_sha
    assert len(server.repos["spaces/alice/demo"].commits) == commits + 1  # one commit: all or nothing
    files = set(HfApi(endpoint=server.url, token=False).list_repo_files("alice/demo", repo_type="space"))
    assert files == set(space.space_files(root)) and "ui/extra.py" in files
    assert server.file("spaces/alice/demo", "app.py").endswith(b"# changed\n")
    assert not [f for f in files if f.startswith("node_modules/")]  # no copy of the runtime: the Space uses the CDN
    assert second.admins is None and server.repos["spaces/alice/demo"].variables == {}  # left alone

    (root / "ui" / "leak.py").write_text(f'TOKEN = "{ALICE}"\n')
    with pytest.raises(HubError, match="ui/leak.py holds an access token .* nothing was uploaded"):
        space.deploy("alice/demo", ALICE, endpoint=server.url, root=root)
    (root / "ui" / "leak.py").write_text('OTHER = "hf_someoneElse9Zx8Cv7Bn6Mm5Ll4Kk3"\n')
    with pytest.raises(HubError, match="ui/leak.py holds an access token"):
        space.deploy("alice/demo", ALICE, endpoint=server.url, root=root)
    assert _head(server, "spaces/alice/demo") == second.commit_sha
    (root / "ui" / "leak.py").unlink()
    with pytest.raises(HubError, match="exists and is public, so deploying would publish"):
        space.deploy("alice/demo", ALICE, private=True, endpoint=server.url, root=root)


def test_deploy_refuses_without_a_token_or_with_bad_admins(server, tmp_path):
    out = _deploy_cli(server, tmp_path, "alice/demo", token=None)
    assert out.returncode == 2 and "deploying needs a Hugging Face token" in out.stderr
    assert "Traceback" not in out.stderr
    with pytest.raises(HubError, match="'bob smith' is not a Hugging Face user name"):
        space.deploy("alice/demo", ALICE, admins="alice,bob smith", endpoint=server.url)
    assert space.parse_admins("") == "" and space.parse_admins(" a ,b,a") == "a,b"
    assert not server.repos
