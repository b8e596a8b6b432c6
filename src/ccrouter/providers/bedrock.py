"""AWS Bedrock: Anthropic's Claude models through InvokeModel, other models through Converse, signed
with AWS Signature Version 4.

- Claude (a model id naming ``anthropic.``, with or without a cross-region inference profile prefix
  ``us.`` / ``eu.`` / ``apac.`` / ``global.``, or an ARN holding it): ``POST {endpoint}/model/{id}/invoke``
  (``/invoke-with-response-stream`` streamed), the Anthropic Messages body without ``model`` and
  ``stream``, with ``anthropic_version: bedrock-2023-05-31``
  (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html).
  The answer is Anthropic's; the stream is the binary event stream whose ``chunk`` events carry
  ``{"bytes": base64(Anthropic SSE event JSON)}``, turned back into Anthropic frames here.
- Any other model: ``/model/{id}/converse`` (``/converse-stream``), ``ccrouter.codecs.converse``.

``{endpoint}`` is ``https://bedrock-runtime.{region}.amazonaws.com`` unless ``base_url`` overrides it
(VPC endpoints, tests). Model ids are percent-encoded in the path (the ``:`` of a version, the ``/`` of
an ARN), sent and signed as boto3 does. Errors: ``x-amzn-ErrorType`` or the body's ``__type`` names
the exception, mapped to our error tree (``error_for``); exception messages inside a stream too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from ccrouter.codecs import sse
from ccrouter.codecs.anthropic import codec
from ccrouter.codecs.anthropic.encode import dumps_as_received, encode_request
from ccrouter.codecs.anthropic.stream import AnthropicStreamDecoder
from ccrouter.codecs.converse import codec as converse
from ccrouter.codecs.converse.stream import ConverseStreamDecoder
from ccrouter.codecs.eventstream import EventMessage, EventStreamDecoder
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.config import ProviderConfig
from ccrouter.errors import UpstreamError, UpstreamProtocolError, upstream_error_for_status
from ccrouter.messages import MessagesRequest, MessagesResponse, StreamEvent
from ccrouter.providers.anthropic import fit_for_anthropic
from ccrouter.providers.aws_credentials import AwsCredentials, chain_loader, static_credentials
from ccrouter.providers.base import HttpCall, StreamDecoder
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.telemetry.redact import Redactor

if TYPE_CHECKING:
    from ccrouter.plugins import Registry

__all__ = [
    "ANTHROPIC_VERSION",
    "SERVICE",
    "BedrockProvider",
    "ClaudeAdapter",
    "ConverseAdapter",
    "endpoint",
    "error_kind",
    "is_claude",
    "model_url",
    "open_bedrock",
    "status_for",
]

ANTHROPIC_VERSION = "bedrock-2023-05-31"
SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime
_MAX_MESSAGE = 500
# Exception name -> HTTP status, from each operation's Errors section
# (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html#API_runtime_InvokeModel_Errors).
# ModelStreamError/ModelError (424 there) and ModelTimeout (408) are the model's failure, not the
# request's: 502 and 504 here, so dispatch moves on to the next candidate.
_EXCEPTIONS = {
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceQuotaExceededException": 429,
    "ServiceUnavailableException": 503,
    "ModelTimeoutException": 504,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "ExpiredTokenException": 403,
    "ResourceNotFoundException": 404,
    "InternalServerException": 500,
    "ModelStreamErrorException": 502,
    "ModelErrorException": 502,
}
# Anthropic betas Bedrock takes (``anthropic_beta`` in the body); it refuses others, and Claude Code
# sends first-party ones (claude-code-20250219, oauth-...). From the Bedrock user guide's Claude page.
_BEDROCK_BETAS = frozenset(
    {
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "token-efficient-tools-2025-02-19",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "effort-2025-11-24",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
    }
)


def endpoint(region: str, base_url: str | None = None) -> str:
    return base_url.rstrip("/") if base_url else f"https://bedrock-runtime.{region}.amazonaws.com"


def model_url(base: str, model: str, action: str) -> str:
    """``{base}/model/{model}/{action}``, the model id percent-encoded as one path segment."""
    return f"{base}/model/{quote(model, safe='-._~')}/{action}"


def is_claude(model: str) -> bool:
    """An Anthropic model id: plain, with an inference profile prefix, or inside an ARN."""
    last = model.rpartition("/")[2].lower()
    return last.startswith("anthropic.") or ".anthropic." in last


def status_for(kind: str, status: int | None = None) -> int:
    """The status Bedrock's exception ``kind`` is mapped by (``status``: the response's, for a kind
    not in the table)."""
    mapped = _EXCEPTIONS.get(kind)
    if mapped is not None:
        return mapped
    return status if status is not None and status >= 400 else 502


def error_kind(headers: Mapping[str, str] | None, data: Any) -> str:
    """The exception name from ``x-amzn-ErrorType`` ("ThrottlingException:http://internal.amazon.com/
    coral/com.amazon.bedrock/") or the body's ``__type`` ("com.amazon.coral.service#ThrottlingException")."""
    raw = (headers or {}).get("x-amzn-errortype") or (data.get("__type") if isinstance(data, dict) else "")
    return str(raw or "").partition(":")[0].rpartition("#")[2]


def _error_text(body: bytes) -> tuple[Any, str]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    message = ""
    if isinstance(data, dict):
        found = data.get("message") or data.get("Message")
        message = found if isinstance(found, str) else ""
    if not message:
        message = body[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    return data, message[:_MAX_MESSAGE]


class _Signer:
    """Signs a call with the provider's current credentials (awaited by the provider just before)."""

    def __init__(self, credentials: AwsCredentials, region: str) -> None:
        self.credentials = credentials
        self._region = region

    def sign(self, call: HttpCall) -> HttpCall:
        frozen = self.credentials.current
        if frozen is None:  # the provider awaits credentials before every call
            raise UpstreamError("bedrock: no AWS credentials resolved yet")
        request = AWSRequest(method="POST", url=call.url, data=call.body, headers=call.headers)
        SigV4Auth(frozen, SERVICE, self._region).add_auth(request)
        call.headers = {name: str(value) for name, value in request.headers.items()}
        call.encoded = True
        return call


class _Base:
    """What both adapters share: the endpoint, signing, Bedrock's error bodies, the event stream."""

    def __init__(self, config: ProviderConfig, signer: _Signer) -> None:
        assert config.region is not None  # ProviderConfig requires it for type: bedrock
        self._base = endpoint(config.region, config.base_url)
        self._signer = signer
        self._extra_headers = dict(config.headers)
        self._provider = config.name
        self._clean = CleanTexts()

    def _call(self, model: str, action: str, body: bytes, *, stream: bool) -> HttpCall:
        headers = {
            "content-type": "application/json",
            "accept": "application/vnd.amazon.eventstream" if stream else "application/json",
        }
        headers.update(self._extra_headers)
        return self._signer.sign(
            HttpCall(url=model_url(self._base, model, action), headers=headers, body=body)
        )

    def error_status(self, status: int, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        data, message = _error_text(body)
        kind = error_kind(headers, data)
        text = f"{kind}: {message}" if kind else message or f"HTTP {status} with an empty body"
        return status_for(kind, status), self.scrub(text)

    def error_message(self, status: int, body: bytes) -> str:
        return self.error_status(status, body, {})[1]

    def scrub(self, text: str) -> str:
        """``text`` without the current credentials' secrets (those of the chain are in no config)."""
        secrets = self._signer.credentials.secrets()
        return Redactor(secrets).text(text) if secrets else text

    def _framer(self, max_frame: int, *, chunks: bool) -> _EventFramer:
        return _EventFramer(max_frame, self._provider, chunks=chunks, scrub=self.scrub)


class ClaudeAdapter(_Base):
    """Claude through InvokeModel: the Anthropic codec in Bedrock's envelope."""

    wire = "anthropic"

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        request = fit_for_anthropic(request, anthropic_api=False, clean=self._clean)
        body: dict[str, Any] = {"anthropic_version": ANTHROPIC_VERSION}
        body.update(encode_request(request, model, stream=stream))
        del body["model"]  # named by the URL
        body.pop("stream", None)  # the operation says it; Bedrock refuses the field
        betas = [b.strip() for b in (request.betas or "").split(",") if b.strip() in _BEDROCK_BETAS]
        if betas:
            body["anthropic_beta"] = betas
        action = "invoke-with-response-stream" if stream else "invoke"
        return self._call(model, action, dumps_as_received(body, request), stream=stream)

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return codec.decode_response(body)

    def stream_decoder(self, call: HttpCall) -> StreamDecoder:
        return AnthropicStreamDecoder()

    def framer(self, call: HttpCall, max_frame: int) -> _EventFramer:
        return self._framer(max_frame, chunks=True)


class ConverseAdapter(_Base):
    """Any other model through Converse / ConverseStream."""

    wire = "converse"

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        body = orjson.dumps(converse.encode_request(request, self._clean))
        call = self._call(model, "converse-stream" if stream else "converse", body, stream=stream)
        call.context = model
        return call

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return converse.decode_response(body, model=str(call.context), provider=self._provider)

    def stream_decoder(self, call: HttpCall) -> StreamDecoder:
        return ConverseStreamDecoder(str(call.context))

    def framer(self, call: HttpCall, max_frame: int) -> _EventFramer:
        return self._framer(max_frame, chunks=False)


class _EventFramer:
    """The event stream as frames for the stream decoders: InvokeModel's ``chunk`` events as the
    Anthropic SSE frames they carry (``chunks``), Converse's events as frames named by their type.
    An exception message raises the mapped error; events of unknown types are skipped."""

    __slots__ = ("_chunks", "_decoder", "_provider", "_scrub")

    def __init__(self, max_frame: int, provider: str, *, chunks: bool, scrub: Callable[[str], str]) -> None:
        self._decoder = EventStreamDecoder(max_frame)
        self._provider = provider
        self._chunks = chunks
        self._scrub = scrub

    def feed(self, chunk: bytes) -> Iterator[sse.SSEFrame]:
        for message in self._decoder.feed(chunk):
            frame = self._frame(message)
            if frame is not None:
                yield frame

    def flush(self) -> Iterator[sse.SSEFrame]:
        return self._decoder.flush()  # type: ignore[return-value]  # yields nothing, or raises

    def _frame(self, message: EventMessage) -> sse.SSEFrame | None:
        kind = message.message_type
        if kind in ("exception", "error"):
            _data, text = _error_text(message.payload)
            name = message.event_type or "InternalServerException"
            reason = self._scrub(f"{self._provider}: {name}: {text}")
            raise upstream_error_for_status(status_for(name), reason, provider=self._provider)
        if kind != "event":
            return None
        if not self._chunks:
            return sse.SSEFrame(event=message.event_type, data=message.payload, raw=b"")
        if message.event_type != "chunk":
            return None  # a newer event type: ignored, as for Anthropic's own unknown events
        try:
            wrapped = orjson.loads(message.payload)
            data = base64.b64decode(wrapped["bytes"], validate=True)
            event = orjson.loads(data)
        except (orjson.JSONDecodeError, binascii.Error, KeyError, TypeError, ValueError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider}: unreadable chunk event ({type(exc).__name__})", provider=self._provider
            ) from None
        found = event.get("type") if isinstance(event, dict) else None
        event_name = found if isinstance(found, str) else None
        if b"\n" in data or b"\r" in data:
            data = orjson.dumps(event)  # one SSE data line
        return sse.SSEFrame(event=event_name, data=data, raw=sse.frame(data, event_name))


class BedrockProvider:
    """Bedrock's two APIs behind one provider, sharing one pool and one set of credentials.

    ``wire`` is "anthropic" when a configured model is Claude, else "converse" (what transformers are
    told); each call speaks its model's API."""

    def __init__(self, config: ProviderConfig, credentials: AwsCredentials) -> None:
        assert config.region is not None
        self.name = config.name
        self._credentials = credentials
        signer = _Signer(credentials, config.region)
        self._session = new_session(config)
        self._claude = HttpProvider(config, ClaudeAdapter(config, signer), self._session)
        self._converse = HttpProvider(config, ConverseAdapter(config, signer), self._session)
        claude = any(is_claude(spec.name) for spec in config.models) or not config.models
        self.wire = "anthropic" if claude else "converse"

    def _for(self, model: str) -> HttpProvider:
        return self._claude if is_claude(model) else self._converse

    async def complete(self, request: MessagesRequest, model: str) -> MessagesResponse:
        await self._credentials.get()
        return await self._for(model).complete(request, model)

    async def stream(self, request: MessagesRequest, model: str) -> AsyncIterator[list[StreamEvent]]:
        await self._credentials.get()
        async for events in self._for(model).stream(request, model):
            yield events

    async def aclose(self) -> None:
        await self._session.close()


def _credentials(config: ProviderConfig) -> AwsCredentials:
    if config.aws_access_key_id is not None and config.aws_secret_access_key is not None:
        fixed = static_credentials(
            config.aws_access_key_id, config.aws_secret_access_key, config.aws_session_token
        )
        return AwsCredentials(config.name, lambda: fixed)
    # botocore's chain, resolved on the first call (it may read files and ask a metadata endpoint).
    return AwsCredentials(config.name, chain_loader(config.aws_profile))


async def open_bedrock(config: ProviderConfig, registry: Registry) -> BedrockProvider:
    """The ``bedrock`` provider type's opener."""
    return BedrockProvider(config, _credentials(config))
