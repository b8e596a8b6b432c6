"""Request bodies the client sends and the pre-built answers the fake upstream returns.

Requests: ``ccrouter.testing.claude_code.claude_code_request()`` (a self-written, Claude-Code-shaped
~98 KB Anthropic body) and the same conversation as an OpenAI chat-completions body (made once with
ccrouter's own codecs, as an OpenAI-format agent would send it). Answers: rendered once with the
fake upstream's own wire renderers (``ccrouter.testing.wire_*``), so every gateway sees exactly what
real providers send, and the upstream spends no time building them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from ccrouter.codecs.anthropic import codec as anthropic_codec
from ccrouter.codecs.openai.chat import Dialect, encode_request
from ccrouter.testing import wire_anthropic, wire_openai
from ccrouter.testing.claude_code import claude_code_request
from ccrouter.testing.script import RecordedRequest, Reply, render_context

CLIENT_MODEL = "claude-opus-4-1"  # what Claude Code asks for; every gateway maps it to UPSTREAM_MODEL
UPSTREAM_MODEL = "gpt-fake"
# ~1 KB answer; 16 characters per streamed delta gives ~60 SSE events per stream.
ANSWER = ("The failing test expects a trailing newline; I added it in app.py and the test passes now. " * 10)[
    :960
]
CHUNK = 16
INPUT_TOKENS = 24_000
OUTPUT_TOKENS = 240
# Events the fake upstream sends before pausing (see upstream.py): a gateway that buffers shows it.
HEAD_FRAMES = 2


# Every request ends with a new user text, "turn <n>", as each Claude Code turn adds to the history:
# a gateway that caches what it decoded before still meets something new every time. Claude Code's
# billing line (the first system block) also changes on every request, so it carries the number too.
# The client puts a fresh 10-digit number in place of each NONCE (see ``Template``).
NONCE = b"@NONCE@@@@"


@dataclass(frozen=True, slots=True)
class Template:
    """A body with ``NONCE`` in it once or more, split around each."""

    parts: tuple[bytes, ...]

    @classmethod
    def of(cls, body: bytes) -> Template:
        parts = tuple(body.split(NONCE))
        if len(parts) < 2:
            raise ValueError("a request template needs a nonce")
        return cls(parts)

    def fill(self, number: int) -> bytes:
        return (b"%010d" % (number % 10**10)).join(self.parts)

    def __len__(self) -> int:
        return sum(map(len, self.parts)) + len(NONCE) * (len(self.parts) - 1)


@dataclass(frozen=True, slots=True)
class Bodies:
    anthropic: Template
    anthropic_stream: Template
    openai: Template
    openai_stream: Template


def _request(stream: bool) -> dict[str, Any]:
    body = claude_code_request(model=CLIENT_MODEL, stream=stream)
    billing = f"x-anthropic-billing-header: cc_version=2.1.197.{NONCE.decode()}; cc_entrypoint=sdk-cli;"
    body["system"][0]["text"] = billing
    last = body["messages"][-1]
    last["content"].append({"type": "text", "text": f"turn {NONCE.decode()}"})
    return body


def request_bodies() -> Bodies:
    def openai_body(stream: bool) -> bytes:
        canonical = anthropic_codec.decode_request(_request(stream))
        body, _ = encode_request(canonical, UPSTREAM_MODEL, stream=stream, dialect=Dialect())
        return orjson.dumps(body)

    return Bodies(
        anthropic=Template.of(orjson.dumps(_request(False))),
        anthropic_stream=Template.of(orjson.dumps(_request(True))),
        openai=Template.of(openai_body(False)),
        openai_stream=Template.of(openai_body(True)),
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """One pre-built answer: a JSON body, and an SSE stream split into head and tail."""

    json: bytes
    stream_head: bytes
    stream_tail: bytes
    json_type: str
    stream_type: str


def _answer(wire: str, include_usage: bool) -> Answer:
    module = wire_openai if wire == "openai" else wire_anthropic
    body = {"model": UPSTREAM_MODEL, "stream_options": {"include_usage": include_usage}}
    record = RecordedRequest(
        wire="openai" if wire == "openai" else "anthropic",
        method="POST",
        path="/",
        query={},
        headers={},
        body=body,
        raw=b"",
        model=UPSTREAM_MODEL,
    )
    reply = Reply(text=ANSWER, input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS, chunk_size=CHUNK)
    ctx = render_context(reply, record, 1, int(time.time()))
    frames = list(module.render_stream(reply, ctx))
    return Answer(
        json=module.render(reply, ctx),
        stream_head=b"".join(frames[:HEAD_FRAMES]),
        stream_tail=b"".join(frames[HEAD_FRAMES:]),
        json_type=module.JSON_CONTENT_TYPE,
        stream_type=module.stream_content_type(ctx),
    )


def answers() -> dict[str, Answer]:
    """Keyed ``anthropic``, ``openai`` (usage chunk asked for) and ``openai-nousage``."""
    return {
        "anthropic": _answer("anthropic", False),
        "openai": _answer("openai", True),
        "openai-nousage": _answer("openai", False),
    }


def stream_frames(wire: str) -> int:
    """How many SSE events one upstream stream carries (for the report)."""
    answer = answers()["openai" if wire == "openai" else "anthropic"]
    return (answer.stream_head + answer.stream_tail).count(b"\n\n")
