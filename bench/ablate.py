#!/usr/bin/env python3
"""What each stage of the Anthropic passthrough (a2a) costs over the floor, measured in one run.

    .venv/bin/python bench/ablate.py            # ~1 min; the usual table, with three extra rows
    .venv/bin/python bench/ablate.py --quick    # a smoke run (any bench/run.py flag passes through)

It runs ``bench/run.py --modes a2a`` with three patched copies of ccrouter (``--variant``), each a
stage of the request path, cumulative. In each, ``/v1/messages`` (non-streamed) is served by a
handler that forwards the client's bytes to the upstream and returns the upstream's bytes, as the
floor does, after doing only:

    ccrouter a2a@1-app      nothing more: ccrouter's app around it (middlewares, request id,
                            exchange, observers: metrics, ledger row, log line)
    ccrouter a2a@2-decode   + decode_request_body (the cached decode every request gets)
    ccrouter a2a@3-plan     + Dispatcher.plan (session, routing rules with token bounds, live
                            state, ranking, fitting the request to the target)

and ``ccrouter a2a`` is the real thing (+ the provider call through the adapter, the response's
decode, accounting, headers). Read the rows' ``cpu/req`` and ``+p50`` against the floor's: the
differences are what each stage adds. Only the non-streamed columns mean anything for the stages
(their handler does not stream: a streamed request gets a JSON answer).

The stage handler uses the dispatcher's private provider pool and session; it is a measuring tool,
not a way to serve anything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src" / "ccrouter"

# Appended to ccrouter/api/anthropic.py: ``routes()`` looks ``messages`` up when the app is built,
# so this definition replaces the real handler.
_STAGE_HANDLER = """

# ---- bench/ablate.py: stage {stage} ----
_ABLATE_STAGE = {stage}
_ABLATE_HEADERS = {{
    "content-type": "application/json",
    "anthropic-version": "2023-06-01",
    "x-api-key": "sk-fake-upstream",
}}


async def messages(request: web.Request) -> web.StreamResponse:  # noqa: F811
    state: Services = services_of(request)
    body = await read_body(request)
    if _ABLATE_STAGE >= 2:
        canonical = decode_request_body(body, state.decode_cache)
        if _ABLATE_STAGE >= 3:
            await state.dispatcher.plan(canonical, request.headers, exchange_for(request))
    pool = next(iter(state.dispatcher._pools.values()))
    provider = next(iter(pool.values()))
    url = str(provider.config.base_url).rstrip("/") + "/v1/messages"
    async with provider._session.post(url, data=body, headers=_ABLATE_HEADERS) as upstream:
        answer = await upstream.read()
    return web.Response(body=answer, content_type="application/json")
"""

STAGES = {1: "1-app", 2: "2-decode", 3: "3-plan"}


def build(stage: int, into: Path) -> Path:
    """A copy of the installed source whose /v1/messages handler stops after ``stage``."""
    folder = into / STAGES[stage]
    shutil.copytree(SOURCE, folder / "ccrouter", ignore=shutil.ignore_patterns("__pycache__"))
    handler = folder / "ccrouter" / "api" / "anthropic.py"
    text = handler.read_text()
    for name in ("read_body", "decode_request_body", "exchange_for", "services_of", "Services"):
        if name not in text:
            raise SystemExit(f"ablate: {handler} no longer imports {name}; update bench/ablate.py")
    handler.write_text(text + _STAGE_HANDLER.format(stage=stage))
    return folder


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ccrouter-ablate-") as tmp:
        folders = [build(stage, Path(tmp)) for stage in STAGES]
        argv = [sys.executable, str(HERE / "run.py"), "--modes", "a2a"]
        for folder in folders:
            argv += ["--variant", str(folder)]
        return subprocess.run([*argv, *sys.argv[1:]], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
