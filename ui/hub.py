"""The Hub tab: push a model to the Hugging Face Hub, or pull one back, checked."""

from __future__ import annotations

import gradio as gr

from .common import PRIVATE, Page, plain_errors, visitor
from .gradio_glue import endpoint


class HubTab:
    def __init__(self, page: Page):
        self.page = page

    @plain_errors
    def push(self, model: str, repo_id: str, token: str = "", private: bool = False, tag: str = "",
             oauth_token: gr.OAuthToken | None = None, profile: gr.OAuthProfile | None = None) -> dict:
        """Publish a model (its weights, config, card and measured quality) to a Hugging Face Hub repo, created if
        needed, in one commit.

        Args:
            model: the model to push (the models tool lists them)
            repo_id: the Hub repo, "owner/name"
            token: a Hugging Face token with write access (empty: your sign-in, or off a Space the server's HF_TOKEN)
            private: true to create the repo private
            tag: an optional git tag for the commit, such as "v1"
        Returns:
            JSON: the model, repo_id, commit_sha, url, tag
        """
        return self.page.service.hub.push(visitor(profile, oauth_token), model, repo_id, token, private, tag)

    @plain_errors
    def pull(self, repo_id: str, revision: str = "main", token: str = "",
             oauth_token: gr.OAuthToken | None = None, profile: gr.OAuthProfile | None = None) -> dict:
        """Pull a model pushed by mnist-gan from the Hugging Face Hub (every file checked against the sha256
        recorded at push time; weights only, never code) and add it to the models as "owner/name@sha7".

        Args:
            repo_id: the Hub repo, "owner/name"
            revision: a branch, tag or commit sha (default "main")
            token: a Hugging Face token, for private repos only
        Returns:
            JSON: the model's new name, repo_id, commit_sha, url
        """
        return self.page.service.hub.pull(visitor(profile, oauth_token), repo_id, revision, token)

    def _push_ui(self, model, repo_id, token, private, tag, oauth_token: gr.OAuthToken | None = None,
                 profile: gr.OAuthProfile | None = None):
        try:
            r = self.push(model, repo_id, token, private, tag, oauth_token, profile)
        except gr.Error as e:  # said in the result, under the buttons: a toast fades, and gradio's red "Error"
            return f"**Push failed:** {e.message}", None  # alone in the result said nothing
        tag = f", tagged `{r['tag']}`" if r["tag"] else ""
        return f"Pushed **{r['model']}** to [{r['repo_id']}]({r['url']}) at commit `{r['commit_sha']}`{tag}.", r

    def _pull_ui(self, repo_id, revision, token, oauth_token: gr.OAuthToken | None = None,
                 profile: gr.OAuthProfile | None = None):
        try:
            r = self.pull(repo_id, revision, token, oauth_token, profile)
        except gr.Error as e:
            return f"**Pull failed:** {e.message}", None
        return (f"Pulled [{r['repo_id']}]({r['url']}) at commit `{r['commit_sha']}`: it is now the model "
                f"**{r['model']}** for Generate and Latent explorer.", r)

    def _use_pulled(self, details):
        """After a pull that worked: the header's picker shows the pulled model (a failed pull leaves it alone, its
        message under the Pull button)."""
        if not details:
            return gr.skip()
        return gr.update(choices=self.page.service.library.names(), value=details["model"])

    def build(self) -> None:
        library = self.page.service.library
        if self.page.service.settings.on_space:
            gr.LoginButton()
        gr.Markdown("Push a model's weights to a Hugging Face Hub repo, or pull one back. Pulls are checked "
                    "against the sha256 recorded at push time; only weights are loaded, never code.")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### Push")
                self.model = gr.Dropdown(library.names(), value=library.default, label="Model to push",
                                         allow_custom_value=True, elem_id="push-model")
                repo = gr.Textbox(label="Repo id", placeholder="your-name/mnist-gan", elem_id="push-repo")
                token = gr.Textbox(label="Token (write access)", type="password", elem_id="push-token",
                                   placeholder="hf_... (or log in, or set HF_TOKEN)")
                with gr.Row():
                    private = gr.Checkbox(False, label="Private repo", elem_id="push-private")
                    tag = gr.Textbox(label="Tag (optional)", placeholder="v1", elem_id="push-tag")
                push = gr.Button("Push", variant="primary", elem_id="push-btn")
            with gr.Column():
                gr.Markdown("### Pull")
                pull_repo = gr.Textbox(label="Repo id", placeholder="owner/mnist-gan", elem_id="pull-repo")
                revision = gr.Textbox("main", label="Revision (branch, tag or commit sha)", elem_id="pull-revision")
                pull_token = gr.Textbox(label="Token (private repos only)", type="password", elem_id="pull-token")
                pull = gr.Button("Pull", variant="primary", elem_id="pull-btn")
        result = gr.Markdown(elem_id="hub-result")
        details = gr.JSON(label="Details", elem_id="hub-json")
        push.click(self._push_ui, [self.model, repo, token, private, tag], [result, details], **PRIVATE)
        pull.click(self._pull_ui, [pull_repo, revision, pull_token], [result, details], **PRIVATE).success(
            self._use_pulled, details, self.page.model, **PRIVATE)
        endpoint(self.push, "push")
        endpoint(self.pull, "pull")
