"""The dashboard's sessions: a login's credential sealed into a cookie, and its CSRF token.

A login presents a key or token (``ccrouter.auth.authenticator`` decides who it is); the gateway
answers with the cookie ``ccr_session``: the credential, a CSRF token and an expiry, encrypted and
authenticated with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``), HttpOnly,
SameSite=Strict, Secure over HTTPS. Nothing is kept on the server, so any instance holding the same
``server.ui.session_secret`` opens it, and every request names its caller afresh through the
configuration's authenticator: a revoked or expired key ends its sessions at once, a changed role
shows at the next page.

A write under ``/api`` made with the cookie (not with an ``Authorization`` header) must carry the
session's CSRF token in ``x-ccrouter-csrf`` and come from the gateway's own origin. Pages get the
token in a ``<meta name="csrf-token">`` tag; it is no credential on its own.

``cryptography`` is imported on the first session, not with the gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from ccrouter.config import UiConfig

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "Session",
    "SessionCodec",
    "clear_cookie",
    "cross_origin",
    "csrf_matches",
    "session_codec",
    "set_cookie",
]

COOKIE = "ccr_session"
CSRF_HEADER = "x-ccrouter-csrf"
# A cookie longer than this is no session of ours (browsers keep at most 4 KiB a cookie).
_MAX_COOKIE = 4096
# Without server.ui.session_secret: one key per start, made at import so that the workers forked by
# ``serve --workers N`` share it.
_PROCESS_SECRET = secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class Session:
    """An open session: the credential it was opened with, its CSRF token and its expiry (unix s)."""

    credential: str
    csrf: str
    expires_at: float


class SessionCodec:
    """Seals and opens session cookies with one key."""

    def __init__(self, secret: bytes, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._key = base64.urlsafe_b64encode(hashlib.sha256(b"ccrouter-ui-session\0" + secret).digest())
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._key)
        return self._fernet

    def seal(self, credential: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for ``credential``: its cookie value and what it holds."""
        moment = time.time() if now is None else now
        session = Session(credential, secrets.token_urlsafe(24), moment + self.ttl_s)
        payload = orjson.dumps({"c": credential, "x": session.csrf, "e": session.expires_at})
        return self._cipher().encrypt_at_time(payload, int(moment)).decode("ascii"), session

    def open(self, cookie: str, now: float | None = None) -> Session | None:
        """The session a cookie holds; None when it is forged, damaged, expired or not ours."""
        from cryptography.fernet import InvalidToken

        if not cookie or len(cookie) > _MAX_COOKIE:
            return None
        moment = time.time() if now is None else now
        try:
            payload = self._cipher().decrypt_at_time(cookie.encode("ascii"), int(self.ttl_s), int(moment))
            data = orjson.loads(payload)
            session = Session(str(data["c"]), str(data["x"]), float(data["e"]))
        except (InvalidToken, UnicodeEncodeError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return session if session.expires_at > moment else None


def session_codec(ui: UiConfig) -> SessionCodec:
    secret = ui.session_secret.get_secret_value().encode() if ui.session_secret else _PROCESS_SECRET
    return SessionCodec(secret, ui.session_ttl_s)


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), session.csrf.encode())


def cross_origin(request: web.Request) -> bool:
    """Whether a browser says this request comes from another site: an ``Origin`` that is not the
    gateway's own, or ``Sec-Fetch-Site: cross-site``. (A request no browser made has neither.)"""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return True
    return request.headers.get("sec-fetch-site") == "cross-site"


def set_cookie(response: web.StreamResponse, request: web.Request, value: str, ttl_s: float) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(ttl_s),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")
