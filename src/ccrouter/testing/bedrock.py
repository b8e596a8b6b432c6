"""A fake AWS Bedrock runtime on loopback, for the ``bedrock`` provider type::

    async with FakeBedrock(region="us-east-1", keys={"AKIDFAKE": "secret"}) as bedrock:
        bedrock.script(Reply(text="hi"))                # as with FakeUpstream
        bedrock.stream_faults(StreamFault("bad_message_crc", after=3))   # the next stream breaks
        ...  # base_url: bedrock.url, region us-east-1, aws_access_key_id AKIDFAKE...

It speaks the real wire: ``POST /model/{id}/invoke`` and ``/invoke-with-response-stream`` (Claude: the
Anthropic body with ``anthropic_version: bedrock-2023-05-31`` and neither ``model`` nor ``stream``;
the stream is the binary event stream with real CRCs, each ``chunk`` carrying an Anthropic event as
base64), ``/converse`` and ``/converse-stream`` (``ccrouter.testing.wire_converse``). Every request
must carry a well-formed SigV4 ``Authorization`` (credential scope of the fake's region and service
``bedrock``); with ``keys``, the signature itself is checked against the key's secret. Errors are
Bedrock's: ``x-amzn-ErrorType`` plus ``{"message"}``. ``GET /_fake/credentials`` is a container
credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI``) issuing temporary keys it then accepts.

Faults: the script's ``Fault("status", status=429)`` is a ThrottlingException (the status picks the
exception), ``Fault("stream_error")`` an exception message mid-stream; ``StreamFault`` corrupts the
next streamed answer (a bad prelude or message CRC, a truncated message, an unknown event type, an
exception message, unknown fields in every payload).
"""

from __future__ import annotations

import base64
import datetime
import hmac
import itertools
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ccrouter.codecs.eventstream import encode_message
from ccrouter.testing import wire_anthropic, wire_converse
from ccrouter.testing.fake_upstream import FakeUpstream
from ccrouter.testing.script import Fault, RecordedRequest, Reply, WireName, render_context

__all__ = ["EXCEPTION_FOR_STATUS", "FakeBedrock", "StreamFault", "exception_message"]

StreamFaultKind = Literal[
    "bad_prelude_crc", "bad_message_crc", "truncated", "unknown_event", "exception", "hidden_fields"
]
_VERSION = "bedrock-2023-05-31"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
# The exception each scripted status stands for (the statuses of the operations' Errors sections).
EXCEPTION_FOR_STATUS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_ACTIONS = {
    "invoke": ("anthropic", False),
    "invoke-with-response-stream": ("anthropic", True),
    "converse": ("converse", False),
    "converse-stream": ("converse", True),
}


@dataclass
class StreamFault:
    """What goes wrong in the next streamed answer, after ``after`` good messages."""

    kind: StreamFaultKind
    after: int = 2
    exception: str = "ModelStreamErrorException"
    message: str = "the model stopped in the middle of the answer"


def exception_message(kind: str, message: str) -> bytes:
    """An event stream message of type exception."""
    headers = {":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"}
    return encode_message(headers, orjson.dumps({"message": message}))


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, orjson.dumps(payload))


class FakeBedrock(FakeUpstream):
    """Bedrock runtime's four operations on loopback, with ``FakeUpstream``'s script."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        keys: dict[str, str] | None = None,
        credentials_expire_in: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        """``keys``: access key id -> secret accepted (signatures verified); None: any key, the
        signature's form checked only. ``credentials_expire_in``: lifetime of the keys
        ``/_fake/credentials`` issues."""
        super().__init__(**kwargs)
        self.region = region
        self.keys = dict(keys) if keys is not None else None
        self.credentials_expire_in = credentials_expire_in
        self.issued = 0  # credentials handed out by /_fake/credentials
        self._stream_faults: deque[StreamFault] = deque()
        self._serial = itertools.count(1)

    def stream_faults(self, *faults: StreamFault) -> None:
        """Queue corruptions, one per streamed answer, in order."""
        self._stream_faults.extend(faults)

    def access_keys(self) -> list[str]:
        """The distinct access key ids the recorded requests were signed with, in the order first seen."""
        seen: dict[str, None] = {}
        for record in self.requests:
            found = _AUTH.match(record.headers.get("authorization", ""))
            if found:
                seen.setdefault(found["key"], None)
        return list(seen)

    def _authorised(self, request: web.Request) -> bool:
        return True  # SigV4 is checked per operation, answered with Bedrock's own errors

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_post("/model/{model}/{action}", self._operation)
        app.router.add_get("/_fake/credentials", self._issue_credentials)
        return app

    # -- credentials -----------------------------------------------------------------------------

    async def _issue_credentials(self, request: web.Request) -> web.Response:
        self.issued += 1
        key = f"ASIAFAKE{next(self._serial):08d}"
        secret = secrets.token_urlsafe(30)
        if self.keys is not None:
            self.keys[key] = secret
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.credentials_expire_in)
        body = {
            "AccessKeyId": key,
            "SecretAccessKey": secret,
            "Token": "fake-session-" + secrets.token_urlsafe(20),
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _signature_problem(self, request: web.Request, body: bytes) -> tuple[str, str] | None:
        """(exception, message) when the request's SigV4 signature is missing or wrong."""
        found = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if found is None:
            return "MissingAuthenticationTokenException", "Missing or malformed Authorization header"
        amz_date = request.headers.get("X-Amz-Date", "")
        if not amz_date.startswith(found["date"]):
            return "InvalidSignatureException", "X-Amz-Date does not match the credential scope's date"
        if found["region"] != self.region or found["service"] != "bedrock":
            scope = f"{found['region']}/{found['service']}"
            return (
                "InvalidSignatureException",
                f"Credential should be scoped to {self.region}/bedrock, not {scope}",
            )
        signed = found["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return "InvalidSignatureException", "host and x-amz-date must be signed"
        if self.keys is None:
            return None
        secret = self.keys.get(found["key"])
        if secret is None:
            return "UnrecognizedClientException", "The security token included in the request is invalid."
        headers = {name: request.headers.get(name, "") for name in signed if name != "host"}
        aws = AWSRequest(
            method=request.method, url=f"http://{request.host}{request.raw_path}", data=body, headers=headers
        )
        aws.context["timestamp"] = amz_date
        signer = SigV4Auth(
            Credentials(found["key"], secret, request.headers.get("X-Amz-Security-Token")),
            "bedrock",
            self.region,
        )
        expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
        if not hmac.compare_digest(expected, found["signature"]):
            return "InvalidSignatureException", "The request signature we calculated does not match"
        return None

    # -- operations ------------------------------------------------------------------------------

    async def _operation(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        model = request.match_info["model"]  # aiohttp decodes the path: %3A is ":" again
        if action not in _ACTIONS:
            return _error(404, "UnknownOperationException", f"no operation {action}")
        wire, stream = _ACTIONS[action]
        kind: WireName = "anthropic" if wire == "anthropic" else "converse"
        record, seq = await self._record(request, kind, model=model, stream=stream)
        problem = self._signature_problem(request, record.raw)
        if problem is not None:
            return _error(403, *problem)
        body = record.body
        if not isinstance(body, dict):
            return _error(400, "ValidationException", "Malformed input request, please reformat your input")
        if wire == "anthropic":
            for field in ("model", "stream"):
                if field in body:
                    return _error(400, "ValidationException", f"extraneous key [{field}] is not permitted")
            if body.get("anthropic_version") != _VERSION:
                return _error(400, "ValidationException", f"anthropic_version must be {_VERSION}")
        elif "messages" not in body:
            return _error(400, "ValidationException", "messages is required")
        item = self._script.pop()
        if item is None:
            item = self._default(record)
        if isinstance(item, Fault):
            return await self._bedrock_fault(request, record, seq, item)
        return await self._reply(request, record, seq, item)

    def _default(self, record: RecordedRequest) -> Reply:
        # The simulated provider reads Anthropic, OpenAI and Gemini bodies; a Converse body gets a
        # fixed answer.
        if record.wire == "converse":
            return Reply(text="Hello from the fake Bedrock.")
        return self.default(record)

    async def _bedrock_fault(
        self, request: web.Request, record: RecordedRequest, seq: int, fault: Fault
    ) -> web.StreamResponse:
        if fault.kind == "stream_error" and record.stream:
            kind = EXCEPTION_FOR_STATUS.get(fault.status, "InternalServerException")
            reply = fault.reply if fault.reply is not None else self._default(record)
            corrupt = StreamFault("exception", after=fault.after_chunks, exception=kind, message="injected")
            return await self._reply(request, record, seq, reply, corrupt=corrupt)
        if fault.kind in ("status", "stream_error"):
            kind = EXCEPTION_FOR_STATUS.get(fault.status, "InternalServerException")
            message = fault.body.decode() if fault.body is not None else f"injected {kind}"
            response = _error(fault.status, kind, message)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(int(fault.retry_after))
            return response
        if fault.kind in ("timeout", "drop_before_first_byte"):
            await self._hold(fault.wait_bound() if fault.kind == "timeout" else fault.delay)
            return self._drop(request, web.Response(), graceful=False)
        raise ValueError(f"FakeBedrock does not serve Fault({fault.kind!r}); use StreamFault")

    async def _reply(
        self,
        request: web.Request,
        record: RecordedRequest,
        seq: int,
        reply: Reply,
        *,
        corrupt: StreamFault | None = None,
    ) -> web.StreamResponse:
        ctx = render_context(reply, record, seq, int(time.time()))
        headers = {"x-amzn-RequestId": f"fake-{seq:08d}-0000-0000-0000-000000000000"}
        if not record.stream:
            if record.wire == "anthropic":
                body = wire_anthropic.render(reply, ctx)
                headers["X-Amzn-Bedrock-Input-Token-Count"] = str(ctx.input_tokens)
                headers["X-Amzn-Bedrock-Output-Token-Count"] = str(ctx.output_tokens)
            else:
                body = orjson.dumps(wire_converse.render(reply, ctx))
            return web.Response(body=body, headers=headers, content_type="application/json")
        if corrupt is None and self._stream_faults:
            corrupt = self._stream_faults.popleft()
        messages = self._messages(
            reply, record, ctx, hidden=corrupt is not None and corrupt.kind == "hidden_fields"
        )
        response = web.StreamResponse(
            headers={**headers, "Content-Type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        for index, message in enumerate(messages):
            if corrupt is not None and index == corrupt.after and corrupt.kind != "hidden_fields":
                await self._corrupted(request, response, message, corrupt)
                return response
            if index and reply.chunk_delay > 0:
                await self._hold(reply.chunk_delay)
            await response.write(message)
        return response

    async def _corrupted(
        self, request: web.Request, response: web.StreamResponse, message: bytes, fault: StreamFault
    ) -> None:
        kind = fault.kind
        if kind == "exception":
            await response.write(exception_message(fault.exception, fault.message))
            return
        if kind == "unknown_event":
            # A newer event type the client does not know, then the rest is never sent: the stream ends
            # unfinished (a client must not wait for more).
            await response.write(_event("futureEventType", {"hello": "from the future"}))
            return
        if kind == "truncated":
            await response.write(message[: len(message) // 2])
            self._drop(request, response, graceful=True)
            return
        broken = bytearray(message)
        if kind == "bad_prelude_crc":
            broken[8] ^= 0xFF
        else:  # bad_message_crc: a payload byte changed in flight
            broken[-5] ^= 0x01
        await response.write(bytes(broken))

    def _messages(self, reply: Reply, record: RecordedRequest, ctx: Any, *, hidden: bool) -> list[bytes]:
        extra = {"unknownField": {"nested": [1, 2]}, "p": "padding"} if hidden else {}
        if record.wire == "converse":
            return [
                _event(kind, {**payload, **extra})
                for kind, payload in wire_converse.render_events(reply, ctx)
            ]
        out = []
        for frame in wire_anthropic.render_stream(reply, ctx):
            data = orjson.loads(frame.split(b"data: ", 1)[1])
            if data.get("type") == "message_stop":
                # Bedrock adds its own metrics to the last event (a field Anthropic never sends).
                data["amazon-bedrock-invocationMetrics"] = {
                    "inputTokenCount": ctx.input_tokens,
                    "outputTokenCount": ctx.output_tokens,
                    "invocationLatency": 42,
                    "firstByteLatency": 7,
                }
            data.update(extra)
            chunk = {"bytes": base64.b64encode(orjson.dumps(data)).decode(), "p": "abcdefgh"}
            out.append(_event("chunk", chunk))
        return out


def _error(status: int, kind: str, message: str) -> web.Response:
    headers = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return web.Response(
        status=status,
        body=orjson.dumps({"message": message}),
        headers=headers,
        content_type="application/json",
    )
