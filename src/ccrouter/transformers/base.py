"""The transformer interface: claude-code-router's transformer idea, on the canonical model.

A transformer changes what one provider is asked and what it answers, by name in the config
(``providers[].transformers``, ``providers[].models[].transformers``). It works on the canonical
request, response and stream events, never on a wire format: the same ``cleancache`` serves an
Anthropic, an OpenAI-chat and a Gemini provider. Every method has a do-nothing default, so a
transformer overrides only what it changes; ``ccrouter.transformers.apply`` calls only the methods a
transformer overrides.

The hook order, for one provider call (``model`` is the upstream model name)::

    request(request, model)      before encoding, provider transformers first, then the model's
    params(request, model, wire) body fields without a canonical meaning, merged into the encoded body
    response(response, model)    after decoding, in the reverse order
    stream(model)                one ``StreamTransform`` per streamed call, fed each batch of events

Rules a transformer keeps (the canonical model's, see ``ccrouter.messages``):

- Never mutate what it was given: messages, blocks and tools may be shared with earlier requests
  (``MessagesRequest.shared_parts``). Build new objects; ``detached`` copies a request for a change.
- Every change is copy-on-write (a new field value, list or block): the client's encoder compares
  each field with what it decoded and re-encodes only the changed ones.
- A changed response sets ``raw_body`` to None; a changed or new stream event has ``raw`` None
  (the client's encoder then serialises it instead of copying the upstream bytes).
- Stream events keep Anthropic's grammar (blocks strictly in sequence, indices from 0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from ccrouter.messages import MessagesRequest, MessagesResponse, StreamEvent

__all__ = ["StreamTransform", "Transformer", "TransformerFactory", "detached"]


class StreamTransform(Protocol):
    """Per-call state over a streamed answer: ``feed`` takes each batch of events in order and returns
    the events to pass on (possibly none, while it holds some back); ``finish`` returns what it still
    holds when the upstream stream has ended."""

    def feed(self, events: list[StreamEvent]) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class Transformer:
    """Subclass and override what the transformer changes; the defaults change nothing."""

    name: ClassVar[str] = "transformer"

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        """The request to encode instead of ``request``."""
        return request

    def params(self, request: MessagesRequest, model: str, wire: str) -> Mapping[str, Any]:
        """Top-level fields merged into the encoded body for a provider speaking ``wire`` (objects are
        merged key by key): for vendor fields the canonical model has no place for (claude-code-router's
        ``customparams``). Only providers spoken to over HTTP have a body to merge them into."""
        return {}

    def response(self, response: MessagesResponse, model: str) -> MessagesResponse:
        """The response to hand back instead of ``response`` (non-streamed calls)."""
        return response

    def stream(self, model: str) -> StreamTransform | None:
        """A fresh ``StreamTransform`` for one streamed call, or None to leave streams alone."""
        return None


# Built from the options the config gives it (``transformers: [[name, {options}]]``); raises
# ``ccrouter.errors.ConfigError`` for options it cannot take.
TransformerFactory = Callable[[Mapping[str, Any]], Transformer]


def detached(request: MessagesRequest) -> MessagesRequest:
    """A shallow copy of ``request`` to change, not marked as sharing its parts with other requests.
    What it received stays: the encoder derives the changes from it (``MessagesRequest.received``)."""
    new = request.copy()
    new.shared_parts = False
    return new
