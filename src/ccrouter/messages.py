"""The canonical request, response and stream-event model: the pivot every codec targets.

It follows Anthropic's Messages API closely because that is the richest of the wire formats we speak
(content blocks, thinking with signatures, cache control, strictly sequential stream blocks). Codecs
translate wire <-> canonical; nothing else knows a wire format.

Everything is a slotted dataclass built by the codecs from already-parsed JSON: no validation pass on
the hot path. Things a codec does not understand are kept, not dropped:

- ``OtherBlock`` holds an unknown content block as its raw dict (server tool results, documents...);
  a codec for the same wire format forwards it, others drop it.
- ``MessagesRequest.extra`` holds unknown top-level fields for the same reason.
- ``MessagesRequest.received`` is what the client sent (``Received``: its body, its format, and the
  canonical request as first decoded). Only ``ccrouter.codecs`` reads it: routing, transformers and
  providers edit the canonical fields, copy-on-write, and the encoder of the client's own format
  sends the client's value of every field still holding the object the decoder made (so a passthrough
  keeps cache_control placement, thinking signatures and fields we do not model) and encodes from the
  canonical request only the fields that changed.
- Thinking produced by a non-Anthropic provider is given the signature ``ccr:<wire>[:<payload>]``
  (payload: the provider's own opaque signature, e.g. Gemini's thoughtSignature). The Anthropic
  decoder turns that back into ``origin=<wire>``; encoders drop thinking of a foreign origin that
  their provider would reject.
- ``StreamEvent.raw`` is the upstream SSE frame exactly as received; an encoder for the same format
  writes it unchanged instead of serialising again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

__all__ = [
    "Block",
    "BlockDelta",
    "BlockStart",
    "BlockStop",
    "ContentBlock",
    "Delta",
    "ImageBlock",
    "InputJsonDelta",
    "Message",
    "MessageDelta",
    "MessageStart",
    "MessageStop",
    "MessagesRequest",
    "MessagesResponse",
    "OtherBlock",
    "Ping",
    "Received",
    "SignatureDelta",
    "StreamError",
    "StreamEvent",
    "TextBlock",
    "TextDelta",
    "ThinkingBlock",
    "ThinkingConfig",
    "ThinkingDelta",
    "Tool",
    "ToolChoice",
    "ToolReferenceBlock",
    "ToolResultBlock",
    "ToolResultPart",
    "ToolUseBlock",
    "Usage",
]

JSON = dict[str, Any]
# "system" messages may appear inside ``messages`` (Claude Code sends them); codecs place them as
# their format allows (Anthropic: in place; OpenAI and Gemini: user text in place, marked as a system
# note, see ``ccrouter.codecs.notes``).
Role = Literal["user", "assistant", "system"]
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


# --------------------------------------------------------------------------- content blocks


@dataclass(slots=True)
class TextBlock:
    text: str
    cache_control: JSON | None = None
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImageBlock:
    """An image given inline (``data`` base64 with ``media_type``) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    cache_control: JSON | None = None
    type: Literal["image"] = "image"


@dataclass(slots=True)
class ToolUseBlock:
    id: str
    name: str
    input: JSON = field(default_factory=dict)
    cache_control: JSON | None = None
    type: Literal["tool_use"] = "tool_use"


@dataclass(slots=True)
class ToolReferenceBlock:
    """A tool a tool result loads (Anthropic tool search: a client-side search tool such as Claude
    Code's ToolSearch answers with these; the named tool's definition, sent with ``defer_loading``,
    becomes callable). Only inside ``ToolResultBlock.content``."""

    tool_name: str
    cache_control: JSON | None = None
    type: Literal["tool_reference"] = "tool_reference"


ToolResultPart = TextBlock | ImageBlock | ToolReferenceBlock


@dataclass(slots=True)
class ToolResultBlock:
    tool_use_id: str
    content: list[ToolResultPart] = field(default_factory=list)
    is_error: bool = False
    cache_control: JSON | None = None
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ThinkingBlock:
    """Model reasoning. ``signature`` is only meaningful to the wire format named by ``origin``.

    ``redacted`` blocks carry their opaque payload in ``data`` and no text. ``origin`` is the wire
    format that produced the block ("anthropic", "openai", "gemini"); codecs drop blocks of a foreign
    origin that their provider would reject (Anthropic rejects thinking it cannot verify).
    """

    thinking: str = ""
    signature: str | None = None
    redacted: bool = False
    data: str | None = None
    origin: str = "anthropic"
    type: Literal["thinking"] = "thinking"


@dataclass(slots=True)
class OtherBlock:
    """A content block we do not model (``server_tool_use``, ``web_search_tool_result``,
    ``document``...), kept as its raw dict."""

    raw: JSON
    type: Literal["other"] = "other"


ContentBlock = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | OtherBlock
Block = ContentBlock


@dataclass(slots=True)
class Message:
    role: Role
    content: list[ContentBlock]


# --------------------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    """A tool definition. Server tools (``web_search_20250305``...) have ``server_type`` set and keep
    their definition in ``raw``; client tools have a JSON Schema in ``input_schema``.

    ``defer_loading``: the tool is loaded only once a ``ToolReferenceBlock`` names it (Anthropic tool
    search); ``ccrouter.codecs.toolsearch`` decides what a target without tool search gets."""

    name: str
    description: str | None = None
    input_schema: JSON = field(default_factory=dict)
    cache_control: JSON | None = None
    defer_loading: bool = False
    server_type: str | None = None
    raw: JSON | None = None


@dataclass(slots=True)
class ToolChoice:
    type: Literal["auto", "any", "tool", "none"] = "auto"
    name: str | None = None
    disable_parallel_tool_use: bool = False


@dataclass(slots=True)
class ThinkingConfig:
    """``enabled`` with a token budget, ``adaptive`` (the model decides), or ``disabled``."""

    type: Literal["enabled", "adaptive", "disabled"] = "disabled"
    budget_tokens: int | None = None

    @property
    def on(self) -> bool:
        return self.type != "disabled"


@dataclass(slots=True)
class MessagesRequest:
    model: str
    messages: list[Message]
    max_tokens: int
    system: list[TextBlock] = field(default_factory=list)
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig = field(default_factory=ThinkingConfig)
    # output_config.effort ("low" | "medium" | "high" | "max"), if the client gave one.
    effort: str | None = None
    metadata: JSON = field(default_factory=dict)
    # Unknown top-level fields (context_management, output_config, service_tier...).
    extra: JSON = field(default_factory=dict)
    # The client's ``anthropic-beta`` header, forwarded to Anthropic-format providers.
    betas: str | None = None
    # True when the messages and tools are objects shared with earlier requests that resent the same
    # bytes (``ccrouter.codecs.anthropic.body``): caches keyed by object identity may use them.
    shared_parts: bool = field(default=False, compare=False)
    # What the client sent, for the encoder of its own wire format (``ccrouter.codecs`` only).
    received: Received | None = field(default=None, repr=False)

    def copy(self) -> MessagesRequest:
        """A shallow copy, as ``dataclasses.replace(self)`` makes, at a tenth of its cost (dispatch
        copies every request it fits to a target). Every field is listed: a test checks the list."""
        new = object.__new__(MessagesRequest)
        new.model = self.model
        new.messages = self.messages
        new.max_tokens = self.max_tokens
        new.system = self.system
        new.stream = self.stream
        new.temperature = self.temperature
        new.top_p = self.top_p
        new.top_k = self.top_k
        new.stop_sequences = self.stop_sequences
        new.tools = self.tools
        new.tool_choice = self.tool_choice
        new.thinking = self.thinking
        new.effort = self.effort
        new.metadata = self.metadata
        new.extra = self.extra
        new.betas = self.betas
        new.shared_parts = self.shared_parts
        new.received = self.received
        return new


@dataclass(slots=True)
class Received:
    """A client's request as its wire decoder read it, kept for the encoder of the same format.

    ``decoded`` is the canonical request as the decoder made it (a shallow copy, itself without
    ``received``). Every edit of a request is copy-on-write (a changed field, list or block is a new
    object), so a field that is still the very object ``decoded`` holds is still what the client
    sent: its encoder sends the client's value (from ``body``, or its bytes from ``parts``) and
    encodes the others from the canonical request.
    """

    format: str
    body: JSON
    decoded: MessagesRequest
    # The client's own bytes of each top-level field of ``body``, with the value parsed from them
    # (``ccrouter.codecs.anthropic.body``).
    parts: Mapping[str, tuple[Any, Buffer]] | None = field(default=None, compare=False)


# --------------------------------------------------------------------------- response


@dataclass(slots=True)
class Usage:
    """Token usage as Anthropic reports it: ``input_tokens`` excludes cached input."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass(slots=True)
class MessagesResponse:
    id: str
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason | None = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    # The upstream body as received, when the upstream spoke the client's format.
    raw_body: bytes | None = None
    raw_format: str | None = None


# --------------------------------------------------------------------------- stream events
#
# Events follow Anthropic's stream grammar: MessageStart, then for each block strictly in sequence
# BlockStart, BlockDelta*, BlockStop, then MessageDelta (stop reason, final usage), MessageStop.
# Ping may appear anywhere; StreamError ends the stream.


@dataclass(slots=True)
class TextDelta:
    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(slots=True)
class InputJsonDelta:
    partial_json: str
    type: Literal["input_json_delta"] = "input_json_delta"


@dataclass(slots=True)
class ThinkingDelta:
    thinking: str
    type: Literal["thinking_delta"] = "thinking_delta"


@dataclass(slots=True)
class SignatureDelta:
    signature: str
    type: Literal["signature_delta"] = "signature_delta"


Delta = TextDelta | InputJsonDelta | ThinkingDelta | SignatureDelta


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage = field(default_factory=Usage)
    raw: bytes | None = None


@dataclass(slots=True)
class BlockStart:
    """``block`` is the block's opening state: empty text, a tool_use with ``input={}``, empty
    thinking, or an ``OtherBlock`` (server tool use/results arrive whole)."""

    index: int
    block: ContentBlock
    raw: bytes | None = None


@dataclass(slots=True)
class BlockDelta:
    index: int
    delta: Delta
    raw: bytes | None = None


@dataclass(slots=True)
class BlockStop:
    index: int
    raw: bytes | None = None


@dataclass(slots=True)
class MessageDelta:
    """Carries the stop reason and the final usage (cumulative, as Anthropic reports it)."""

    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    raw: bytes | None = None


@dataclass(slots=True)
class MessageStop:
    raw: bytes | None = None


@dataclass(slots=True)
class Ping:
    raw: bytes | None = None


@dataclass(slots=True)
class StreamError:
    """An error inside a stream; ``error_type`` is an Anthropic error type."""

    error_type: str
    message: str
    raw: bytes | None = None


StreamEvent = (
    MessageStart | BlockStart | BlockDelta | BlockStop | MessageDelta | MessageStop | Ping | StreamError
)
