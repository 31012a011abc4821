"""The Hub tab's actions as plain Python: push a model, pull one back into the models, and the start-up model.

The service's Hub section. On a public Space pushing and pulling are for admins (access.py), and a visitor's
call never spends the Space's own token: it uses the token field or the visitor's own login.
"""

from __future__ import annotations

from mnist_gan.access import Visitor, require_admin
from mnist_gan.errors import MnistGanError, log
from mnist_gan.serving.library import Library

from . import push_pull


class Hub:
    def __init__(self, library: Library, cache_dir: str | None, on_space: bool):
        """cache_dir: the Hub cache pulls go to (None: huggingface_hub's own); on_space: visitors are not the
        machine's owner, so $HF_TOKEN is never theirs."""
        self.library, self.cache_dir, self.on_space = library, cache_dir, on_space

    def push(self, visitor: Visitor, model: str, repo_id: str, token: str = "", private: bool = False,
             tag: str = "") -> dict:
        """Push a model's weights folder to a Hub repo (created if needed); returns the commit sha and its URL."""
        require_admin(visitor, "Pushing to the Hub")
        folder = self.library.folder(model)
        return _result(push_pull.push(folder, repo_id, self._token(visitor, token), private=bool(private),
                                      tag=tag or None), model)

    def pull(self, visitor: Visitor, repo_id: str, revision: str = "main", token: str = "") -> dict:
        """Pull a pushed model (checked against its recorded sha256) and add it to the models as repo@sha."""
        require_admin(visitor, "Pulling from the Hub")
        result = push_pull.pull(repo_id, revision or "main", token=self._token(visitor, token),
                                cache_dir=self.cache_dir)
        return _result(result, self._add_pulled(result))

    def startup_model(self, repo: str | None, revision: str = "main") -> str:
        """Pull `repo`@`revision` and make it the default model (the owner's MNIST_GAN_REPO); returns a notice.
        Whatever goes wrong, the shipped default stays and the notice says why."""
        if not repo:
            return ""
        shipped = self.library.default
        try:  # the owner's own setting: its token is $HF_TOKEN
            result = push_pull.pull(repo, revision, token=push_pull.resolve_token(), cache_dir=self.cache_dir)
            self.library.default = self._add_pulled(result)
        except Exception as e:  # whatever went wrong, the app starts, on the shipped model
            self.library.default = shipped
            reason = str(e) if isinstance(e, MnistGanError) else f"{type(e).__name__}; see the log"
            if not isinstance(e, MnistGanError):
                log.error("the start-up model %s@%s failed to load", repo, revision, exc_info=e)
            return f"Could not load {repo}@{revision} from the Hub ({reason}). Showing the shipped model {shipped!r}."
        return f"Loaded {self.library.default} from the Hub ({result.url})."

    def _token(self, visitor: Visitor, field: str) -> str | None:
        """The token a caller's Hub action uses: the field, else their own login, else (off a Space only, where
        the caller is the machine's owner) $HF_TOKEN."""
        return push_pull.resolve_token(field, visitor.oauth_token, environment=not self.on_space)

    def _add_pulled(self, result: push_pull.HubResult) -> str:
        """A pulled model joins the models; the ones it pushes out leave the Hub cache too."""
        name = f"{result.repo_id}@{result.commit_sha[:7]}"
        for _, folder in self.library.add(name, result.folder, f"from the Hub ({result.url})"):
            if folder.parent.name == "snapshots":  # a huggingface_hub cache snapshot: its files and their blobs
                push_pull.drop_snapshot(folder)
        return name


def _result(result: push_pull.HubResult, model: str) -> dict:
    return {"model": model, "repo_id": result.repo_id, "commit_sha": result.commit_sha, "url": result.url,
            "tag": result.tag}
