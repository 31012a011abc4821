"""Image permalinks: a Generate grid addressed by its settings in a URL (`GET /png?seed=7&n=64`), cacheable.

`parse` turns a query string into Service.generate's arguments (anything wrong is an InvalidInput, in generate's
own words), `etag` names the grid's content without drawing it (its weights' sha256 and the checked settings), and
the route (ui/permalink.py) answers 304 when the browser or CDN already holds that content.
"""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import parse_qs, urlencode

from mnist_gan.errors import InvalidInput, shown

from .drawing import ALL_DIGITS, GridRequest

PATH = "png"  # served at /png; the page links to it relatively, so it works under any root path
PARAMS = ("model", "seed", "n", "digit", "temperature", "scale")
DEFAULTS = {"seed": 0, "n": 64, "digit": ALL_DIGITS, "temperature": 1.0}  # the Generate tab's own
MAX_QUERY = 512  # bytes: the longest sensible link (a long model name and every parameter) is ~200
VERSION = 1  # of the PNG encoding: part of every ETag, so a change of encoder changes every tag
_INTEGER = re.compile(r"[+-]?\d{1,20}")


def parse(query: str, default_model: str) -> dict:
    """Service.generate's keyword arguments from a raw query string; numbers are converted, anything else is left
    for generate to refuse in its own words."""
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"the query is longer than {MAX_QUERY} characters")
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=len(PARAMS) + 1)
    except ValueError:
        raise InvalidInput(f"too many parameters: use {', '.join(PARAMS)}") from None
    unknown = sorted(set(values) - set(PARAMS))
    if unknown:
        raise InvalidInput(f"unknown parameter {shown(unknown[0])}: use {', '.join(PARAMS)}")
    repeated = [name for name, given in values.items() if len(given) > 1]
    if repeated:
        raise InvalidInput(f"{repeated[0]} is given more than once")
    args = {"model": default_model, **DEFAULTS, "scale": None}
    for name, (value,) in values.items():
        args[name] = value if name in ("model", "digit") else query_number(value)
    if args["digit"] in ("", "all"):
        args["digit"] = ALL_DIGITS
    return args


def query_number(text: str):
    """An int or a finite-or-not float from query text; the text itself when it is neither (then refused)."""
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def etag(grid: GridRequest) -> str:
    """A strong HTTP entity tag for the grid's PNG: the same tag always means the same bytes."""
    key = [VERSION, grid.key() or f"live:{id(grid.generator)}"]
    return '"' + hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names `tag` (or is *): the client holds the content already."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return tag in tags or "*" in tags


def link(model: str, seed, n, digit=ALL_DIGITS, temperature=1.0) -> str:
    """The relative permalink of a Generate grid (settings at their defaults left out, model always in)."""
    values = {"model": model, "seed": seed, "n": n, "digit": digit, "temperature": temperature}
    query = {k: _plain(v) for k, v in values.items() if k == "model" or v != DEFAULTS.get(k)}
    return f"{PATH}?{urlencode(query)}"


def _plain(value):
    return int(value) if isinstance(value, float) and value.is_integer() and not isinstance(value, bool) else value

