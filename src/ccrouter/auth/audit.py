"""The audit trail's writer: one store row per admin action (``AuditRecord``).

Actions a handler performs are recorded with ``record`` (awaited: the action's answer waits for its
row, so an acknowledged change is always in the trail). Failed admin authentications come from the
authentication middleware, which must answer them fast and must not let a flood of them fill the
store: ``failed_login`` is non-blocking and writes at most one row per client address a minute,
carrying how many attempts that row stands for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ccrouter.auth.keys import AuditRecord
from ccrouter.auth.roles import Principal
from ccrouter.errors import CCRouterError
from ccrouter.store.base import Store

__all__ = ["Auditor", "actor_of"]

log = logging.getLogger("ccrouter.audit")

# Addresses remembered for the once-a-minute rule; past this the oldest are forgotten.
_MAX_ADDRESSES = 10_000


def actor_of(principal: Principal | None) -> str:
    """How the trail names who acted."""
    if principal is None or principal.kind == "anonymous":
        return "anonymous"
    if principal.kind == "admin_token":
        return "admin"
    return principal.id or principal.kind


class Auditor:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        # address -> (minute window start, failures counted since the last row)
        self._failures: dict[str, tuple[float, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(
        self,
        action: str,
        *,
        actor: str,
        outcome: str = "ok",
        target: str | None = None,
        address: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Write one row now; a store failure is logged and raised (the action is not acknowledged)."""
        row = AuditRecord(self._clock(), actor, action, outcome, target, address, detail)
        await self._store.audit_add([row])

    def failed_login(self, address: str, reason: str, path: str, *, actor: str | None = None) -> None:
        """Note a failed admin authentication from ``address`` (never the credential presented), or
        with ``actor`` a valid credential whose role does not allow the call: the first of each
        minute per address is written, with the count of those it stands for."""
        now = self._clock()
        start, count = self._failures.get(address, (0.0, 0))
        if now - start < 60.0:
            self._failures[address] = (start, count + 1)
            return
        if len(self._failures) >= _MAX_ADDRESSES:
            self._failures.pop(next(iter(self._failures)))
        self._failures[address] = (now, 0)
        detail = {"reason": reason, "path": path[:200], "since_last_row": count}
        action = "auth.failed" if actor is None else "auth.forbidden"
        row = AuditRecord(now, actor or "anonymous", action, "denied", None, address, detail)
        task = asyncio.get_running_loop().create_task(self._write(row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, row: AuditRecord) -> None:
        try:
            await self._store.audit_add([row])
        except (CCRouterError, OSError) as exc:
            log.warning("audit record of a failed login not written: %s", exc)

    async def aclose(self) -> None:
        """Wait for the failed-login rows still being written."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
