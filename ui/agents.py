"""The app for agents, as an MCP server (Model Context Protocol, at /gradio_api/mcp/): whether it is on, its two
resources (a model's card, the training run's status, as text), and request refusals an MCP client can read.

The tools are the app's public endpoints, described by their docstrings; ui/gradio_glue.py mends gradio's server.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from urllib.parse import unquote

from mnist_gan.errors import MnistGanError
from mnist_gan.training.run_state import RunStatus

from .common import Page, plain_errors
from .gradio_glue import endpoint, mcp_resource, mend_mcp_server

log = logging.getLogger(__name__)
MCP_ENV = "MNIST_GAN_MCP"
MODEL_URI, RUN_URI = "mnist-gan://models/{name}", "mnist-gan://training/status"
# The numbers of a model's metrics.json a card shows, in words (`python -m mnist_gan evaluate --write` writes them)
QUALITY_WORDS = {
    "n": "samples judged", "cfid": "cFID, the classifier's Fréchet distance to real digits (lower is better)",
    "cfid_x_real": "cFID over that of held-out real digits (1 is as good as real)",
    "recognisable": "share of samples the classifier reads as a digit with confidence",
    "classifier_score": "classifier score (an Inception score with the MNIST classifier; at most 10)",
    "class_kl": "KL divergence of the digits drawn from uniform (0: every digit equally often)",
    "class_min": "share of the rarest digit", "class_max": "share of the commonest digit",
    "precision": "precision (samples inside the real digits' manifold)",
    "recall": "recall (real digits inside the samples' manifold)", "density": "density", "coverage": "coverage",
    "near_copies": "share of samples very close to a training digit (memorisation)",
    "nn_ratio": "median distance to the nearest training digit, over that of held-out real digits",
    "class_histogram": "share of each digit 0-9",
}


# The training settings as an API docstring's Args lines (gradio reads one line per parameter): train_start and
# train_fork take them all, train_set the live ones
SETTING_ARGS = {
    "architecture": '"classic" (the Keras recipe\'s MLPs) or "dcgan" (convolutional)',
    "conditional": "true: G and D see the digit label, and the model draws the digit it is asked for",
    "batch_size": "images per step, 1-4096 (classic recipe: 32)",
    "lr_g": "the generator's Adam learning rate, in (0, 1] (classic recipe: 0.0002)",
    "lr_d": "the discriminator's Adam learning rate, in (0, 1] (classic recipe: 0.0002)",
    "beta_1": "Adam's beta_1, in [0, 1) (classic recipe: 0.5)",
    "ema_decay": "in [0, 1): a moving average of G's weights draws cleaner digits (0: off; recommended: 0.9999)",
    "steps": "training iterations, 1-200000 (recommended recipe: 20000, about 10 minutes on 2 CPU cores)",
    "loss": '"bce" (the classic recipe\'s binary cross-entropy) or "hinge" (measured better)',
    "latent_code": "InfoGAN categories for an unconditional model: 0 (off) or 2 and up (mlp-uncond: 10)",
    "seed": "0-4294967295: the weights, batches and noise all follow from it",
    "d_steps": "discriminator steps per generator step, 1-10 (classic recipe: 1)",
}


def setting_args(names, indent: str = " " * 12) -> str:
    """Args lines for these training settings, indented as a method's docstring."""
    return "\n".join(f"{indent}{name}: {SETTING_ARGS[name]}" for name in names if name in SETTING_ARGS)


def serve_mcp(environ=os.environ) -> bool:
    """Whether the app serves MCP (on unless MNIST_GAN_MCP=0, and off, saying so, without the `mcp` package that
    requirements.txt pins); when it does, gradio's server is mended first."""
    if environ.get(MCP_ENV, "1").strip() == "0":
        return False
    if importlib.util.find_spec("mcp") is None:
        log.warning("the MCP server is off: the mcp package is missing (pip install -r requirements.txt)")
        return False
    mend_mcp_server()
    return True


def declare_resources(page: Page) -> None:
    """The MCP resources, which gradio serves from endpoints (so they are REST endpoints too): never an error, since
    gradio's resource reader cannot pass one on (it fails on the missing result)."""
    service = page.service

    @plain_errors
    def model_card(name: str) -> str:
        """A model's card as Markdown text: what it is, how it was trained, its config and its measured quality
        (cFID, recognisable share, precision, recall...).

        Args:
            name: a model name, as the models tool lists them (in a resource URI a pulled model's "/" is %2F)
        """
        try:
            return card_text(service.library.details(unquote(name) if isinstance(name, str) else name))
        except MnistGanError as e:
            return f"{str(e).rstrip('.')}. The models tool lists them."

    @plain_errors
    def run_status() -> str:
        """The training run's status as text: its state, step, speed, D's accuracies, losses and latest cFID, and
        any unfinished run that can be resumed. (The train_status tool gives the same as JSON, with the history.)"""
        return status_text(service.training.status())

    endpoint(mcp_resource(model_card, MODEL_URI), "model_card", concurrency_limit=None)
    endpoint(mcp_resource(run_status, RUN_URI), "run_status", concurrency_limit=None)


def card_text(d: dict) -> str:
    """A model's details (Library.details) as Markdown."""
    conditional = ("class-conditional: generate and the other tools take a digit 0-9" if d["conditional"] else
                   "unconditional: it draws whatever digit its latent gives")
    steps = f"trained {d['steps']:,} steps" if d["steps"] else "training steps not recorded"
    lines = [f"# {d['name']}", "", f"A {d['description']}; {conditional}. Source: {d['source']}; {steps}.", "",
             "## Quality", ""]
    quality = {key: value for key, value in d["quality"].items() if key in QUALITY_WORDS}
    if quality:
        lines += [f"- {QUALITY_WORDS[key]}: {_number(value)}" for key, value in quality.items()]
    else:
        lines.append("Not measured (`python -m mnist_gan evaluate --write` measures it).")
    lines += ["", "## Config", "", "```json", json.dumps(d["config"], indent=2), "```"]
    return "\n".join(lines)


def status_text(s: RunStatus) -> str:
    """The run's status in a few lines of text."""
    resumable = "".join(f"\nUnfinished run {r['run']}: checkpoint at step {r['step']:,} of {r['steps']:,}; "
                        "train_resume_run continues it." for r in s.resumable_runs)
    if s.run is None:
        return "No training run yet (train_start starts one)." + resumable
    lines = [f"Run {s.run}: {s.state.value}, step {s.step:,} of {s.steps:,} ({100 * s.progress:.0f}%), "
             f"training on {s.data}."]
    if s.images_per_sec:
        left = (f"{s.eta_s:.0f} s" if s.eta_s < 90 else f"{s.eta_s / 60:.0f} min") if s.eta_s is not None else ""
        eta = f", about {left} left" if left and s.state.active else ""
        lines.append(f"Speed: {s.images_per_sec:,.0f} images/s{eta}.")
    if s.d_acc_real is not None:
        lines.append(f"D's accuracy: {s.d_acc_real:.2f} on real digits, {s.d_acc_fake:.2f} on generated ones "
                     f"(near 0.5 on both: D cannot tell them apart). D loss {_number(s.d_loss)}, G loss "
                     f"{_number(s.g_loss)}.")
    if s.quality and s.quality[-1].get("cfid") is not None:
        lines.append(f"cFID {_number(s.quality[-1]['cfid'])} at step {s.quality[-1]['step']:,} (lower is better).")
    if s.message:
        lines.append(s.message)
    lines += [f"Divergence at step {i['step']:,}: {i['reason']}; {i['action']}." for i in s.incidents[-3:]]
    if s.state.done and s.saved_step is not None:
        lines.append(f"Its weights (step {s.saved_step:,}) are the model {s.run}.")
    return "\n".join(lines) + resumable


def _number(value) -> str:
    if isinstance(value, list):
        return ", ".join(_number(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else "-"


# --- refusals an MCP client can read ----------------------------------------------------------------------------

MCP_PATHS = ("/gradio_api/mcp", "/gradio_api/mcp/", "/gradio_api/mcp/http", "/gradio_api/mcp/http/")
REFUSED = (411, 413, 429)
KEPT = 4096  # bytes kept of a refused body, at its start and at its end, to find its JSON-RPC id
DRAIN = 16 * 2**20  # read (and drop) at most this much of a refused body, so its sender gets to read the answer
_ID = rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,256}")'
_ID_FIRST = re.compile(rb"\A\s*\{" + rb'(?:\s*"(?:jsonrpc|method)"\s*:\s*"[^"]{0,64}"\s*,)*\s*' + _ID)
_ID_LAST = re.compile(_ID + rb'(?:\s*,\s*"(?:jsonrpc|method)"\s*:\s*"[^"]{0,64}")*\s*\}\s*\Z')


class McpRefusals:
    """A refused MCP request (ui/limits.py: too large, no length, too many) answered as a JSON-RPC error for its
    id: the official mcp client takes any other HTTP error for a broken connection and ends the whole session, with
    nothing the caller can read. Outside the request limits, so it sees their refusals; of a refused body only its
    first and last KEPT bytes are held."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(MCP_PATHS):
            return await self.app(scope, receive, send)
        head, tail, read, ended, refusal = bytearray(), bytearray(), [0], [False], []

        async def reading():
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                head.extend(body[:KEPT - len(head)])
                tail.extend(body[-KEPT:])
                del tail[:-KEPT]
                read[0] += len(body)
                ended[0] = not message.get("more_body", False)
            else:
                ended[0] = True
            return message

        async def sending(message):
            if refusal or (message["type"] == "http.response.start" and message["status"] in REFUSED):
                refusal.append(message)
            else:
                await send(message)

        await self.app(scope, reading, sending)
        if not refusal:
            return
        while not ended[0] and read[0] < DRAIN:  # the rest, dropped: a client sends it all before reading an answer
            await reading()
        request_id = request_id_of(bytes(head), bytes(tail)) if ended[0] else None
        if request_id is None:
            for message in refusal:
                await send(message)
            return
        text = b"".join(m.get("body", b"") for m in refusal[1:])
        try:
            reason = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            reason = f"HTTP {refusal[0]['status']}"
        body = json.dumps({"jsonrpc": "2.0", "id": request_id,
                           "error": {"code": -32600, "message": f"Refused: {reason}"}}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def request_id_of(head: bytes, tail: bytes):
    """A JSON-RPC request's id from its body's first and last bytes: the id written before the params (as the
    TypeScript SDK writes it) or after them (as the Python SDK does), at the top level of the object."""
    found = _ID_FIRST.search(head) or _ID_LAST.search(tail)
    return json.loads(found.group(1)) if found else None
