"""Who a request is (``Principal``) and what its role lets it do (``required_role``).

Roles are cumulative: ``client`` < ``viewer`` < ``operator`` < ``admin``. Every role may call the
model endpoints (``/v1/*``); ``viewer`` adds reading ``/api/*`` (and the observability endpoints when
they are protected); ``operator`` adds managing keys of role client, budgets and configuration
reloads; ``admin`` may do everything, other admins' keys included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ROLES",
    "Principal",
    "PrincipalKind",
    "Role",
    "can",
    "required_role",
]

Role = Literal["client", "viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("client", "viewer", "operator", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}

# static: a key of server.api_keys; key: a managed key from the store (``ccrouter keys``); admin_token:
# server.admin_token; jwt: a verified single sign-on token; reader: the statusline's session read
# token; anonymous: no credential, on a gateway that does not require one (loopback); cli: ``ccrouter
# keys`` on the store directly (``cli:<os user>``, a local admin).
PrincipalKind = Literal["static", "key", "admin_token", "jwt", "reader", "anonymous", "cli"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``id`` is what the ledger, the limits and the audit trail record:
    the key id (``key_...`` for managed keys, the name for static ones), ``jwt:<subject>``, ``admin``.
    ``models``: the routes it may use (``provider,model``, ``provider,*`` or a bare model name;
    None: any). ``rpm``/``tpm``/``budget_*``: its own limits (a managed key's), None: none."""

    kind: PrincipalKind
    id: str | None
    role: Role
    name: str | None = None
    user: str | None = None
    team: str | None = None
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: Literal["daily", "weekly", "monthly"] | None = None
    # Unix seconds after which the credential is refused (a managed key's expiry, a JWT's exp).
    expires_at: float | None = None
    # The client may name its user in x-ccrouter-user (a team key shared by several people).
    user_header: bool = False


def can(role: Role, needed: Role) -> bool:
    """Whether ``role`` includes ``needed``."""
    return _RANK[role] >= _RANK[needed]


_READ = frozenset({"GET", "HEAD", "OPTIONS"})
# (path prefix, role to write): the first prefix that matches decides; any other /api/* write is admin.
_WRITERS: tuple[tuple[str, Role], ...] = (
    ("/api/keys", "operator"),
    ("/api/budgets", "operator"),
    ("/api/config/reload", "operator"),
    ("/api/cache", "operator"),
)


# Reads that need admin: the config file's text (its secrets masked, but its whole shape shown).
_ADMIN_READS = frozenset({"/api/config/source"})


def required_role(method: str, path: str) -> Role:
    """The least role that may make ``method path`` on the admin API. Reads need viewer (admin for
    ``_ADMIN_READS``); writes need the role ``_WRITERS`` gives their prefix, else admin. Finer rules
    (an operator may manage only keys of role client) are checked by the handler."""
    if method.upper() in _READ:
        return "admin" if path in _ADMIN_READS else "viewer"
    for prefix, role in _WRITERS:
        if path == prefix or path.startswith(prefix + "/"):
            return role
    return "admin"
