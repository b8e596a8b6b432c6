"""A fake Azure OpenAI resource, for the ``azure`` provider type::

    async with FakeAzureOpenAI(api_key="azure-key-123") as azure:
        azure.script(Reply(text="hi"), Fault("status", status=429, retry_after=2))
        ...  # base_url: azure.url; azure.requests[0].model is the deployment called

It answers OpenAI chat completions at Azure's paths: ``/openai/deployments/{deployment}/chat/completions``
(an ``api-version`` query required, else 404 as Azure answers) and the v1 API's
``/openai/v1/chat/completions`` (the deployment in the body's ``model``). Auth: the ``api-key`` header,
or ``Authorization: Bearer`` with one of ``tokens`` (an Entra ID token); anything else is a 401 in
Azure's error envelope (``{"error": {"code": "401", "message"}}``), as are the scripted status faults,
a 429 with ``retry-after-ms`` and ``retry-after``. A stream starts with Azure's prompt filter chunk
(``choices: []``, ``prompt_filter_results``), as Azure sends it.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from ccrouter.testing.fake_upstream import FakeUpstream
from ccrouter.testing.script import Fault, RecordedRequest

__all__ = ["FakeAzureOpenAI"]

_MESSAGES = {
    400: "The request was invalid.",
    401: (
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
        "valid key for an active subscription and use a correct regional API endpoint for your resource."
    ),
    404: "Resource not found",
    429: (
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
        "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {s} seconds."
    ),
    500: "The server had an error while processing your request.",
    503: "The service is temporarily unable to process your request.",
}
_FILTER = {
    "hate": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def azure_error(status: int, retry_after: float | None = None) -> bytes:
    message = _MESSAGES.get(status, f"HTTP {status}").replace("{s}", f"{retry_after or 1:g}")
    return orjson.dumps({"error": {"code": str(status), "message": message}})


class FakeAzureOpenAI(FakeUpstream):
    """Azure OpenAI's chat completions on loopback, with ``FakeUpstream``'s script and faults."""

    def __init__(self, *, api_key: str | None = None, tokens: tuple[str, ...] = (), **kwargs: Any) -> None:
        """``api_key``: the resource key accepted as ``api-key``; ``tokens``: bearer tokens accepted.
        Neither: any ``api-key`` or bearer token (one must be sent)."""
        super().__init__(**kwargs)
        self.resource_key = api_key
        self.tokens = set(tokens)

    def _authorised(self, request: web.Request) -> bool:
        if request.path.startswith("/_fake/"):
            return True
        key = request.headers.get("api-key")
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if self.resource_key is None and not self.tokens:
            return bool(key or bearer)
        return (key is not None and key == self.resource_key) or bearer in self.tokens

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._deployment)
        app.router.add_post("/openai/v1/chat/completions", self._v1)
        return app

    async def _deployment(self, request: web.Request) -> web.StreamResponse:
        if not request.query.get("api-version"):
            record, seq = await self._record(request, "openai", stream=False)
            return self._status(record, seq, Fault("status", status=404))
        body = await self._body(request)
        stream = isinstance(body, dict) and body.get("stream") is True
        return await self._generate(request, "openai", model=request.match_info["deployment"], stream=stream)

    async def _v1(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "openai")

    @staticmethod
    async def _body(request: web.Request) -> Any:
        try:
            return orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return None

    def _status(self, record: RecordedRequest, seq: int, fault: Fault) -> web.Response:
        body = fault.body if fault.body is not None else azure_error(fault.status, fault.retry_after)
        headers = CIMultiDict({"Content-Type": "application/json", "apim-request-id": f"fake-{seq}"})
        if fault.retry_after is not None:
            headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
            headers["retry-after"] = str(max(1, round(fault.retry_after)))
        headers.update(fault.headers)
        return web.Response(status=fault.status, body=body, headers=headers)

    def _stream_prelude(self, record: RecordedRequest) -> list[bytes]:
        chunk = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTER}],
        }
        return [b"data: " + orjson.dumps(chunk) + b"\n\n"]
