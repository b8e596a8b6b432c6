"""The dashboard's files: its Jinja2 templates and its static assets (CSS, JS, the vendored uPlot),
shipped in the wheel under ``ccrouter/ui`` and read once, off the event loop, when the app starts."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2

__all__ = ["Asset", "UiAssets"]

_PACKAGE = "ccrouter.ui"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _content_type(name: str) -> str:
    if name.endswith(".js"):
        return "text/javascript"
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


class UiAssets:
    """The templates (an autoescaping Jinja2 environment) and the static files, by name."""

    def __init__(self, templates: dict[str, str], static: dict[str, bytes]) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.DictLoader(templates),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.static = {
            name: Asset(body, _content_type(name), '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
            for name, body in static.items()
        }
        # Each page's links carry the file's hash (``?v=``), so a new release is fetched at once.
        self.env.globals["asset"] = self.url

    def url(self, name: str) -> str:
        return f"/ui/static/{name}?v={self.static[name].etag.strip(chr(34))[:10]}"

    @classmethod
    def load(cls) -> UiAssets:
        """Read every file (blocking: call it in a thread)."""
        root = resources.files(_PACKAGE)
        templates = {
            item.name: item.read_text("utf-8")
            for item in root.joinpath("templates").iterdir()
            if item.name.endswith(".html")
        }
        static = {
            item.name: item.read_bytes()
            for item in root.joinpath("static").iterdir()
            if item.is_file() and not item.name.endswith(".LICENSE")
        }
        return cls(templates, static)

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)
