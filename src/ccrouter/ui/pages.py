"""The dashboard's pages at ``/ui``: login and logout, one handler per page, the static files.

Each page is a ``Page`` (path, template, title, least role); ``routes()`` registers them all, behind
one check: without a session a page redirects to the login form, with a role too low it answers 403.
A page's template gets the caller (``principal``), what the role may do (``can``), the CSRF token and
the navigation of the pages the role may open; a control the role may not use is not rendered at
all (the API refuses the call anyway). The data comes from the JSON API (``/api/*``), which each
page's script fetches with the session cookie.

Every answer carries a strict Content-Security-Policy (scripts and styles from the gateway only, no
inline script), ``cache-control: no-store`` on pages, and no secret in its HTML except a new key's
secret, which the Keys page's script shows once from the API's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ccrouter import __version__
from ccrouter.api.auth import AUTH_GUARD
from ccrouter.api.state import services_of
from ccrouter.auth.audit import actor_of
from ccrouter.auth.authenticator import Refused
from ccrouter.auth.roles import ROLES, Principal, Role, can
from ccrouter.errors import AuthenticationError, AuthThrottledError
from ccrouter.ui.assets import UiAssets
from ccrouter.ui.identity import session_caller
from ccrouter.ui.session import Session, clear_cookie, cross_origin, csrf_matches, set_cookie

__all__ = ["PAGES", "UI_ASSETS", "Page", "UiFiles", "load_assets", "render", "routes"]

PREFIX = "/ui"
LOGIN = "/ui/login"
_MAX_TOKEN = 8192
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class UiFiles:
    """Where the app keeps its ``UiAssets`` once they are read (at startup, off the loop)."""

    __slots__ = ("assets",)

    def __init__(self) -> None:
        self.assets: UiAssets | None = None


UI_ASSETS: web.AppKey[UiFiles] = web.AppKey("ccrouter_ui_assets", UiFiles)


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    template: str
    title: str
    role: Role = "viewer"


# The navigation, in order. A page a role may not open is not in its navigation.
PAGES: tuple[Page, ...] = (
    Page("/ui/", "overview.html", "Overview"),
    Page("/ui/requests", "requests.html", "Requests"),
    Page("/ui/costs", "costs.html", "Costs"),
    Page("/ui/keys", "keys.html", "Keys", "operator"),
    Page("/ui/config", "config.html", "Configuration"),
    Page("/ui/audit", "audit.html", "Audit"),
)


def _secured(response: web.StreamResponse, *, cache: bool = False) -> web.StreamResponse:
    response.headers.update(_SECURITY_HEADERS)
    if not cache:
        response.headers["cache-control"] = "no-store"
    return response


def _assets(request: web.Request) -> UiAssets:
    assets = request.app[UI_ASSETS].assets
    if assets is None:  # the app is served only once its startup (which reads them) has run
        raise web.HTTPServiceUnavailable(text="the dashboard is starting")
    return assets


def _abilities(principal: Principal) -> dict[str, bool]:
    """What the templates may offer the caller (the API checks again)."""
    return {
        "manage_keys": can(principal.role, "operator"),
        "manage_any_key": can(principal.role, "admin"),  # an operator manages keys of role client only
        "reload": can(principal.role, "operator"),
        "edit_config": can(principal.role, "admin"),
    }


def render(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    caller: tuple[Session, Principal] | None = None,
    **context: Any,
) -> web.Response:
    """A page: ``template`` rendered with the caller, its abilities, the CSRF token and navigation."""
    assets = _assets(request)
    base: dict[str, Any] = {
        "version": __version__,
        "path": request.path,
        "principal": None,
        "csrf": "",
        "nav": (),
        "can": {},
        "roles": ROLES,
    }
    if caller is not None:
        session, principal = caller
        base.update(
            principal=principal,
            csrf=session.csrf,
            nav=tuple(p for p in PAGES if can(principal.role, p.role)),
            can=_abilities(principal),
        )
    base.update(context)
    html = assets.render(template, **base)
    response = web.Response(text=html, status=status, content_type="text/html")
    _secured(response)
    return response


def _login_redirect(request: web.Request) -> web.HTTPSeeOther:
    target = request.path_qs if request.method == "GET" else PREFIX + "/"
    return web.HTTPSeeOther(f"{LOGIN}?next={quote(target, safe='')}")


def _page_handler(page: Page) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        caller = await session_caller(request)
        if caller is None:
            raise _login_redirect(request)
        if not can(caller[1].role, page.role):
            return render(
                request,
                "denied.html",
                status=403,
                caller=caller,
                title=page.title,
                needed=page.role,
            )
        return render(request, page.template, caller=caller, title=page.title, page=page)

    return handler


def _next_path(value: str | None) -> str:
    """Where a login goes on to: a path under /ui only (never another site)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX + "/"


async def login_form(request: web.Request) -> web.Response:
    if await session_caller(request) is not None:
        raise web.HTTPSeeOther(_next_path(request.query.get("next")))
    return render(
        request, "login.html", title="Log in", next=_next_path(request.query.get("next")), error=None
    )


async def login(request: web.Request) -> web.Response:
    services = services_of(request)
    form = await request.post()
    target = _next_path(str(form.get("next", "")))
    token = str(form.get("token", "")).strip()

    def refused(message: str, status: int) -> web.Response:
        return render(request, "login.html", status=status, title="Log in", next=target, error=message)

    if cross_origin(request):
        return refused("this form must be sent from the gateway's own page", 403)
    guard = request.app[AUTH_GUARD]
    address, wait = guard.admit(request)
    principal: Principal | None = None
    reason = "missing_credential"
    if token and len(token) <= _MAX_TOKEN:
        try:
            principal = await services.authenticator.identify(token)
        except Refused as error:
            reason = error.reason
    if principal is None:
        services.auditor.failed_login(address, reason, request.path)
        try:
            guard.refuse(request, address, wait, "invalid_admin_token", AuthenticationError(reason))
        except AuthThrottledError as error:
            return refused(str(error), 429)
        return refused("that key or token is not valid here", 401)
    try:
        guard.check(request, address, wait, principal.id)
    except AuthThrottledError as error:
        return refused(str(error), 429)
    if not can(principal.role, "viewer"):
        services.auditor.failed_login(
            address, f"role {principal.role} < viewer", request.path, actor=principal.id
        )
        return refused(f"this credential has role {principal.role}; the dashboard needs viewer or above", 403)
    cookie, _session = services.ui_sessions.seal(token)
    await services.auditor.record(
        "ui.login", actor=actor_of(principal), address=request.remote, detail={"role": principal.role}
    )
    response = web.HTTPSeeOther(target)
    set_cookie(response, request, cookie, services.ui_sessions.ttl_s)
    _secured(response)
    raise response


async def logout(request: web.Request) -> web.Response:
    caller = await session_caller(request)
    form = await request.post()
    response = web.HTTPSeeOther(LOGIN)
    if (
        caller is not None
        and not cross_origin(request)
        and csrf_matches(caller[0], str(form.get("csrf", "")))
    ):
        await services_of(request).auditor.record(
            "ui.logout", actor=actor_of(caller[1]), address=request.remote
        )
        clear_cookie(response)
    _secured(response)
    raise response


async def static(request: web.Request) -> web.Response:
    asset = _assets(request).static.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound(text="no such file")
    headers = {"etag": asset.etag, "cache-control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == asset.etag:
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=asset.body, content_type=asset.content_type, headers=headers)
    _secured(response, cache=True)
    return response


async def bare(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(PREFIX + "/")


async def load_assets(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: read the templates and static files before the first request."""
    app[UI_ASSETS].assets = await asyncio.to_thread(UiAssets.load)
    yield


def routes() -> list[web.RouteDef]:
    out = [
        web.get(PREFIX, bare),
        web.get(LOGIN, login_form),
        web.post(LOGIN, login),
        web.post("/ui/logout", logout),
        web.get("/ui/static/{name}", static),
    ]
    out += [web.get(page.path, _page_handler(page)) for page in PAGES]
    return out
