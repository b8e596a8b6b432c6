"""Golden-file helpers shared by the codec tests.

A golden file holds the exact expected output of a case; ``CCROUTER_REGEN_GOLDEN=1`` rewrites the files
instead of comparing (review the diff before committing).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from ccrouter.codecs.openai.chat import Dialect
from ccrouter.codecs.openai.stream import OpenAIStreamDecoder
from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.codecs.sse import SSEParser
from ccrouter.messages import StreamEvent

ROOT = Path(__file__).resolve().parent.parent / "golden"


def regenerating() -> bool:
    return os.environ.get("CCROUTER_REGEN_GOLDEN") == "1"


def assert_golden(path: Path, actual: Any) -> None:
    """Compare ``actual`` with the golden JSON file; rewrite the file instead when regenerating."""
    if regenerating():
        path.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n")
        return
    assert path.exists(), f"missing golden {path.name}; run with CCROUTER_REGEN_GOLDEN=1"
    assert actual == orjson.loads(path.read_bytes()), f"golden mismatch: {path.parent.name}/{path.name}"


class GoldenDir:
    """Cases stored as ``<folder>/<case>.json`` (input) and ``<folder>/<case>.expected.json``."""

    def __init__(self, name: str) -> None:
        self.root = ROOT / name

    def cases(self, folder: str) -> list[str]:
        return sorted(
            p.stem for p in (self.root / folder).glob("*.json") if not p.name.endswith(".expected.json")
        )

    def load(self, folder: str, case: str) -> Any:
        return orjson.loads((self.root / folder / f"{case}.json").read_bytes())

    def check(self, folder: str, case: str, actual: Any) -> None:
        assert_golden(self.root / folder / f"{case}.expected.json", actual)


def names_for(tools: list[str]) -> ToolNames:
    """A tool-name map that has seen ``tools`` (so wire names are stable across a case)."""
    names = ToolNames(id_prefix="test")
    for tool in tools:
        names.to_wire_name(tool)
    return names


def with_wire_names(value: Any, names: ToolNames) -> Any:
    """Replace "WIRE:<name>" strings by the wire form of <name>."""
    if isinstance(value, str) and value.startswith("WIRE:"):
        return names.to_wire_name(value[len("WIRE:") :])
    if isinstance(value, dict):
        return {key: with_wire_names(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [with_wire_names(item, names) for item in value]
    return value


def sse_bytes(frames: list[Any]) -> bytes:
    """Chunks (objects) as ``data:`` frames; strings are raw data, or comments when they start with ":"."""
    out = []
    for item in frames:
        if isinstance(item, str):
            out.append(
                item.encode() + b"\n\n" if item.startswith(":") else b"data: " + item.encode() + b"\n\n"
            )
        else:
            out.append(b"data: " + orjson.dumps(item) + b"\n\n")
    return b"".join(out)


def decode_openai_stream(data: bytes, names: ToolNames, *, cut: int | None = None) -> list[StreamEvent]:
    """Decode an upstream byte stream as the HTTP transport does, optionally cut every ``cut`` bytes."""
    parser = SSEParser()
    decoder = OpenAIStreamDecoder(names, Dialect(), model="fallback-model", provider="p")
    events: list[StreamEvent] = []
    pieces = [data] if cut is None else [data[i : i + cut] for i in range(0, len(data), cut)]
    for piece in pieces:
        for frame in parser.feed(piece):
            events += decoder.feed(frame)
    for frame in parser.flush():
        events += decoder.feed(frame)
    return events + decoder.finish()
