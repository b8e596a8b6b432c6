"""Who a dashboard session is: its cookie opened, its credential named again by the configuration's
authenticator (``ccrouter.ui.session``)."""

from __future__ import annotations

from aiohttp import web

from ccrouter.api.state import services_of
from ccrouter.auth.authenticator import Refused
from ccrouter.auth.roles import Principal, can
from ccrouter.ui.session import COOKIE, Session

__all__ = ["session_caller"]


async def session_caller(request: web.Request) -> tuple[Session, Principal] | None:
    """The session and caller of the request's ``ccr_session`` cookie; None without one, or when it
    is not valid any more (expired, sealed with another secret, its key revoked, its role now below
    viewer)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    services = services_of(request)
    session = services.ui_sessions.open(cookie)
    if session is None:
        return None
    try:
        principal = await services.authenticator.identify(session.credential)
    except Refused:
        return None
    if principal is None or not can(principal.role, "viewer"):
        return None
    return session, principal
