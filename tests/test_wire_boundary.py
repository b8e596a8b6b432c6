"""Only the codecs read what the client sent (``MessagesRequest.received``): routing, transformers
and providers edit the canonical request, and each wire encoder derives what changed."""

from __future__ import annotations

import ast
from pathlib import Path

import ccrouter

SRC = Path(ccrouter.__file__).resolve().parent


def _readers() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] == "codecs" or relative == Path("messages.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "received":
                found.append(f"{relative}:{node.lineno}")
            elif isinstance(node, ast.keyword) and node.arg == "received":
                found.append(f"{relative}:{node.value.lineno}")
    return found


def test_nothing_outside_the_codecs_reads_or_writes_what_the_client_sent() -> None:
    assert _readers() == []
