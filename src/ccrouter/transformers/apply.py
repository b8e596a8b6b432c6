"""Transformers applied at the provider boundary.

``build_transformers`` turns the config's ``transformers`` lists into one ``Chain`` per provider and
model, checking every name against the registry (when the app is built, so a typo never reaches a
request). ``providers.registry`` then wraps the wire adapter of a provider that has a chain
(``TransformingAdapter``), or the provider itself when it is not spoken to over HTTP
(``TransformingProvider``). A provider without transformers is not wrapped at all: it costs nothing.

A transformer that raises while a request is served becomes a ``PluginError`` naming it, which the
API renders as a clean error for that request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from ccrouter.codecs.sse import SSEFrame
from ccrouter.config import ProviderConfig, TransformerUse
from ccrouter.errors import CCRouterError, ConfigError, PluginError
from ccrouter.messages import MessagesRequest, MessagesResponse, StreamEvent
from ccrouter.providers.base import HttpCall, Provider, StreamDecoder, WireAdapter
from ccrouter.transformers.base import StreamTransform, Transformer, TransformerFactory

__all__ = [
    "Chain",
    "ProviderTransformers",
    "TransformingAdapter",
    "TransformingProvider",
    "build_transformers",
]

_T = TypeVar("_T")
# claude-code-router names that are not transformers here, and what to write instead.
_HINTS = {
    "anthropic": "the wire format: type: anthropic",
    "openai": "the wire format: type: openai",
    "gemini": "the wire format: type: gemini",
    "vertex-gemini": "the wire format: type: gemini, vendor: vertex",
    "deepseek": "a vendor profile: vendor: deepseek",
    "groq": "a vendor profile: vendor: groq",
    "openrouter": "a vendor profile: vendor: openrouter (options: customparams)",
}


def _overrides(transformer: Transformer, method: str) -> bool:
    return getattr(type(transformer), method) is not getattr(Transformer, method)


def _guarded(name: str, call: Callable[..., _T], *args: Any) -> _T:
    try:
        return call(*args)
    except CCRouterError:
        raise
    except Exception as exc:  # the boundary: a transformer's own code, maybe a third party's
        raise PluginError(f"transformer {name!r} failed: {exc!r}") from exc


class _Streams:
    """The stream transforms of one call, each fed what the one before it passed on."""

    __slots__ = ("_stages",)

    def __init__(self, stages: list[tuple[str, StreamTransform]]) -> None:
        self._stages = stages

    def feed(self, events: list[StreamEvent]) -> list[StreamEvent]:
        for name, stage in self._stages:
            if not events:
                break
            events = _guarded(name, stage.feed, events)
        return events

    def finish(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for name, stage in self._stages:
            if out:
                out = _guarded(name, stage.feed, out)
            out = [*out, *_guarded(name, stage.finish)]
        return out


@dataclass(frozen=True, slots=True)
class Chain:
    """The transformers of one provider model, in config order, each list holding only those that
    override that step (so an empty step is a loop over nothing)."""

    requests: tuple[tuple[str, Transformer], ...] = ()
    params: tuple[tuple[str, Transformer], ...] = ()
    responses: tuple[tuple[str, Transformer], ...] = ()  # already reversed
    streams: tuple[tuple[str, Transformer], ...] = ()  # already reversed

    @classmethod
    def of(cls, named: Sequence[tuple[str, Transformer]]) -> Chain:
        def having(method: str) -> tuple[tuple[str, Transformer], ...]:
            return tuple(item for item in named if _overrides(item[1], method))

        return cls(having("request"), having("params"), having("response")[::-1], having("stream")[::-1])

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        for name, transformer in self.requests:
            request = _guarded(name, transformer.request, request, model)
        return request

    def body_params(self, request: MessagesRequest, model: str, wire: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for name, transformer in self.params:
            _merge(merged, _guarded(name, transformer.params, request, model, wire))
        return merged

    def response(self, response: MessagesResponse, model: str) -> MessagesResponse:
        for name, transformer in self.responses:
            response = _guarded(name, transformer.response, response, model)
        return response

    def stream(self, model: str) -> _Streams | None:
        stages = []
        for name, transformer in self.streams:
            stage = _guarded(name, transformer.stream, model)
            if stage is not None:
                stages.append((name, stage))
        return _Streams(stages) if stages else None


def _merge(target: dict[str, Any], params: Mapping[str, Any]) -> None:
    """Objects merged key by key (recursively); anything else replaced."""
    for key, value in params.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        elif isinstance(value, Mapping):
            target[key] = {}
            _merge(target[key], value)
        else:
            target[key] = value


@dataclass(frozen=True, slots=True)
class ProviderTransformers:
    """One provider's chains: ``default`` for any model, ``models`` for those with their own list."""

    default: Chain
    models: Mapping[str, Chain]

    def chain(self, model: str) -> Chain:
        return self.models.get(model, self.default)


def _instances(
    uses: Sequence[TransformerUse], factories: Mapping[str, TransformerFactory], where: str
) -> list[tuple[str, Transformer]]:
    out: list[tuple[str, Transformer]] = []
    for index, use in enumerate(uses):
        at = f"{where}.transformers[{index}]"
        factory = factories.get(use.name)
        if factory is None:
            hint = _HINTS.get(use.name.lower())
            known = ", ".join(sorted(factories)) or "none"
            advice = f"; here it is {hint}" if hint else ""
            raise ConfigError(f"{at}: unknown transformer {use.name!r}{advice} (registered: {known})")
        try:
            out.append((use.name, factory(use.options)))
        except ConfigError as exc:
            raise ConfigError(f"{at} ({use.name}): {exc.message}") from None
        except Exception as exc:  # the boundary: a third party's factory
            raise PluginError(f"{at}: transformer {use.name!r} failed: {exc!r}") from exc
    return out


def build_transformers(
    providers: Sequence[ProviderConfig], factories: Mapping[str, TransformerFactory]
) -> dict[str, ProviderTransformers]:
    """Provider name -> its chains, for the providers that name any transformer. Raises
    ``ConfigError`` for an unknown name or options a transformer refuses."""
    out: dict[str, ProviderTransformers] = {}
    for p_index, provider in enumerate(providers):
        where = f"providers[{p_index}] ({provider.name})"
        shared = _instances(provider.transformers, factories, where)
        models = {
            spec.name: Chain.of([*shared, *_instances(spec.transformers, factories, f"{where}.models[{i}]")])
            for i, spec in enumerate(provider.models)
            if spec.transformers
        }
        if shared or models:
            out[provider.name] = ProviderTransformers(Chain.of(shared), models)
    return out


# --------------------------------------------------------------------------- the wrappers


@dataclass(slots=True)
class _Call:
    inner: HttpCall
    chain: Chain
    model: str


class _Decoder:
    __slots__ = ("_inner", "_streams")

    def __init__(self, inner: StreamDecoder, streams: _Streams) -> None:
        self._inner = inner
        self._streams = streams

    def feed(self, frame: SSEFrame) -> list[StreamEvent]:
        return self._streams.feed(self._inner.feed(frame))

    def finish(self) -> list[StreamEvent]:
        return [*self._streams.feed(self._inner.finish()), *self._streams.finish()]


class TransformingAdapter:
    """A wire adapter with a provider's transformers around it (HTTP providers)."""

    def __init__(self, inner: WireAdapter, transformers: ProviderTransformers) -> None:
        self.wire = inner.wire
        self._inner = inner
        self._transformers = transformers

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        chain = self._transformers.chain(model)
        request = chain.request(request, model)
        call = self._inner.build(request, model, stream=stream)
        params = chain.body_params(request, model, self.wire) if chain.params else None
        body = call.body
        if params:
            document = orjson.loads(call.body)
            _merge(document, params)
            body = orjson.dumps(document)
        return HttpCall(url=call.url, headers=call.headers, body=body, context=_Call(call, chain, model))

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        context: _Call = call.context
        response = self._inner.parse_response(body, context.inner)
        return context.chain.response(response, context.model)

    def stream_decoder(self, call: HttpCall) -> StreamDecoder:
        context: _Call = call.context
        decoder = self._inner.stream_decoder(context.inner)
        streams = context.chain.stream(context.model)
        return decoder if streams is None else _Decoder(decoder, streams)

    def error_message(self, status: int, body: bytes) -> str:
        return self._inner.error_message(status, body)


class TransformingProvider:
    """A provider of its own (not a wire adapter over HTTP) with its transformers around it. It has
    no body to merge ``params`` into: ``wrap_opened`` refuses a chain that sets any."""

    def __init__(self, inner: Provider, transformers: ProviderTransformers) -> None:
        self.name = inner.name
        self.wire = inner.wire
        self._inner = inner
        self._transformers = transformers

    @classmethod
    def wrap(cls, provider: Provider, transformers: ProviderTransformers) -> TransformingProvider:
        chains = [transformers.default, *transformers.models.values()]
        named = sorted({name for chain in chains for name, _ in chain.params})
        if named:
            raise ConfigError(
                f"provider {provider.name!r}: transformers {named} add body fields, and this provider"
                " type has no HTTP body to add them to"
            )
        return cls(provider, transformers)

    async def complete(self, request: MessagesRequest, model: str) -> MessagesResponse:
        chain = self._transformers.chain(model)
        response = await self._inner.complete(chain.request(request, model), model)
        return chain.response(response, model)

    async def stream(self, request: MessagesRequest, model: str) -> AsyncIterator[list[StreamEvent]]:
        chain = self._transformers.chain(model)
        events = self._inner.stream(chain.request(request, model), model)
        streams = chain.stream(model)
        if streams is None:
            async for batch in events:
                yield batch
            return
        async for batch in events:
            out = streams.feed(batch)
            if out:  # the Provider contract: never an empty batch
                yield out
        tail = streams.finish()
        if tail:
            yield tail

    async def aclose(self) -> None:
        await self._inner.aclose()
