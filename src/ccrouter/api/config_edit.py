"""Editing the config file over HTTP (role admin, ``ccrouter.auth.roles``): the dashboard's
Configuration editor.

- ``GET /api/config/source``: the file's text with every secret masked (``ccrouter.config_source``),
  its ``version`` and path.
- ``POST /api/config/validate`` ``{"source": ...}``: ``{"ok": true}`` or ``{"ok": false, "errors":
  [{"path", "message"}]}``, checked as a reload would (``ccrouter.config_check``).
- ``PUT /api/config/source`` with ``If-Match: <version>``: validated, written atomically (a temporary
  file in the same folder renamed over it, its mode kept), applied through the live reload; a
  refused reload puts the old file back (422). Audited as ``config.applied`` (the versions, never the
  text).

The version is a keyed hash of the file's bytes (``hmac``, a key made at import): it changes with
any edit, and cannot be used to test a guess of a secret in the file. Without a config file every
route answers 409.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from ccrouter.api.common import read_body
from ccrouter.api.observe import PRINCIPAL
from ccrouter.api.state import GATEWAY
from ccrouter.auth.audit import actor_of
from ccrouter.config_check import Checked, check_text, problems_of
from ccrouter.config_source import MaskedSource, Problem, mask, restore
from ccrouter.errors import ConfigError, RequestError, RequestTooLargeError
from ccrouter.reload import Gateway
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["MAX_SOURCE_BYTES", "SourceEditor", "routes", "source_version"]

# The largest body ``validate`` and ``PUT`` take (a config file is a few kilobytes).
MAX_SOURCE_BYTES = 1024 * 1024
SOURCE_PATH = "/api/config/source"
_VERSION_KEY = os.urandom(16)


def source_version(data: bytes) -> str:
    """The file's version: a keyed hash of its bytes (the same in every worker of one ``serve``)."""
    return hmac.new(_VERSION_KEY, data, hashlib.sha256).hexdigest()[:32]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json(
        {"type": "error", "error": {"type": "invalid_request_error", "message": message}, **extra}, status
    )


def _invalid(problems: list[Problem], **extra: Any) -> web.Response:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return _error(422, f"the configuration is invalid ({count})", ok=False, errors=_dicts(problems), **extra)


def _wanted(request: web.Request) -> str:
    """The version ``If-Match`` names (``"v"``, ``W/"v"`` or ``v``), "" without one."""
    return request.headers.get("if-match", "").strip().removeprefix("W/").strip('"')


def _stale(file: _File) -> web.Response:
    message = "the config file changed since it was read: reload the page (your edit is not applied)"
    return _error(409, message, version=file.version)


def _dicts(problems: list[Problem]) -> list[dict[str, Any]]:
    return [problem.to_dict() for problem in problems]


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    data: bytes
    version: str


def _read(path: Path) -> _File:
    data = path.read_bytes()
    return _File(path, data, source_version(data))


def _write_atomic(path: Path, data: bytes) -> None:
    """``data`` in a temporary file beside ``path`` (its mode), flushed, then renamed over it."""
    target = path.resolve()  # a symlinked config: the file it points to is the one edited
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SourceEditor:
    """The three routes, sharing one lock: an apply is checked, written and reloaded alone."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _gateway(request: web.Request) -> tuple[Gateway, Path]:
        gateway = request.app[GATEWAY]
        if gateway.config_path is None:
            raise RequestError(
                "this gateway was not started from a config file: there is no file to show or edit",
                status=409,
            )
        return gateway, gateway.config_path

    @staticmethod
    async def _file(path: Path) -> _File:
        try:
            return await asyncio.to_thread(_read, path)
        except OSError as exc:
            raise RequestError(f"cannot read the config file: {exc.strerror or exc}", status=409) from None

    @staticmethod
    def _masked(file: _File, secrets: set[str]) -> MaskedSource:
        try:
            return mask(file.data.decode("utf-8"), secrets)
        except UnicodeDecodeError:
            raise RequestError("the config file is not UTF-8 text", status=409) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise RequestError(
                f"the config file on disk is not valid YAML{where}: fix it there, then reload this page",
                status=409,
            ) from None

    @staticmethod
    async def _edited(request: web.Request) -> str:
        if request.content_length is not None and request.content_length > MAX_SOURCE_BYTES:
            raise RequestTooLargeError(f"body: larger than {MAX_SOURCE_BYTES} bytes")
        raw = await read_body(request)
        if len(raw) > MAX_SOURCE_BYTES:
            raise RequestTooLargeError(f"body: larger than {MAX_SOURCE_BYTES} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RequestError('body: expected JSON {"source": "<the config file\'s text>"}') from None
        if not isinstance(body, dict) or not isinstance(body.get("source"), str):
            raise RequestError('body: expected JSON {"source": "<the config file\'s text>"}')
        source: str = body["source"]
        return source

    async def _check(self, gateway: Gateway, file: _File, edited: str) -> tuple[str, Checked]:
        """The edit with its secrets put back, and what a reload would make of it."""
        running = gateway.current

        def work() -> tuple[str, Checked]:
            secrets = secrets_of(running.settings)
            hidden = self._masked(file, secrets).hidden
            secrets |= {item.raw for item in hidden}
            try:
                text, problems = restore(edited, hidden)
            except yaml.YAMLError:
                text, problems = edited, []  # the check below names the syntax error
            if problems:
                return text, Checked(None, problems)
            checked = check_text(
                text,
                running=running.settings,
                registry=running.registry,
                base_dir=file.path.parent,
                source=str(file.path),
                secrets=secrets,
            )
            return text, checked

        return await asyncio.to_thread(work)

    # ------------------------------------------------------------------ handlers

    async def show(self, request: web.Request) -> web.Response:
        gateway, path = self._gateway(request)
        file = await self._file(path)
        source = await asyncio.to_thread(self._masked, file, secrets_of(gateway.current.settings))
        body = {
            "path": str(path),
            "version": file.version,
            "source": source.text,
            "masked": len(source.hidden),
            "redacted": source.redacted,
        }
        response = _json(body)
        response.headers["etag"] = f'"{file.version}"'
        response.headers["cache-control"] = "no-store"
        return response

    async def validate(self, request: web.Request) -> web.Response:
        """``If-Match`` is optional here: with it, an edit made on an older text is a 409 (its
        markers may name other secrets now)."""
        gateway, path = self._gateway(request)
        edited = await self._edited(request)
        file = await self._file(path)
        wanted = _wanted(request)
        if wanted and not hmac.compare_digest(wanted, file.version):
            return _stale(file)
        _, checked = await self._check(gateway, file, edited)
        if checked.problems:
            return _json({"ok": False, "errors": _dicts(checked.problems)})
        return _json({"ok": True, "restart_required": checked.restart_required})

    async def apply(self, request: web.Request) -> web.Response:
        gateway, path = self._gateway(request)
        wanted = _wanted(request)
        if not wanted:
            return _error(428, f"If-Match: send the version GET {SOURCE_PATH} gave, so that no edit is lost")
        edited = await self._edited(request)
        async with self._lock:
            file = await self._file(path)
            if not hmac.compare_digest(wanted, file.version):
                return _stale(file)
            text, checked = await self._check(gateway, file, edited)
            audit = _Audit(request, gateway, file.version)
            if checked.problems:
                await audit("failed", {"stage": "validation", "errors": len(checked.problems)})
                return _invalid(checked.problems, version=file.version)
            data = text.encode("utf-8")
            try:
                await asyncio.to_thread(_write_atomic, path, data)
            except OSError as exc:
                raise RequestError(
                    f"cannot write the config file: {exc.strerror or exc}", status=409
                ) from None
            result = await gateway.reload()
            if result.status == "refused":
                await asyncio.to_thread(_write_atomic, path, file.data)
                await audit("failed", {"stage": "reload", "status": result.status})
                redactor = Redactor(s.strip() for s in secrets_of(gateway.current.settings))
                error = ConfigError(redactor.text(result.error or "refused"))
                reload = {**result.to_dict(), "error": error.message}
                return _invalid(problems_of(error, str(path)), version=file.version, reload=reload)
            new = source_version(data)
            await audit("ok", {"version": new, "status": result.status, "config_version": result.version})
        return _json(
            {
                "ok": True,
                "path": str(path),
                "version": new,
                "previous_version": file.version,
                "reload": result.to_dict(),
            }
        )


class _Audit:
    """The ``config.applied`` row of one apply: who, from where, the old version and what became of it."""

    def __init__(self, request: web.Request, gateway: Gateway, previous: str) -> None:
        self._request = request
        self._gateway = gateway
        self._previous = previous

    async def __call__(self, outcome: str, detail: dict[str, Any]) -> None:
        await self._gateway.current.auditor.record(
            "config.applied",
            actor=actor_of(self._request.get(PRINCIPAL)),
            outcome=outcome,
            address=self._request.remote,
            detail={"previous_version": self._previous, **detail},
        )


def routes() -> list[web.RouteDef]:
    editor = SourceEditor()
    return [
        web.get(SOURCE_PATH, editor.show),
        web.put(SOURCE_PATH, editor.apply),
        web.post("/api/config/validate", editor.validate),
    ]
