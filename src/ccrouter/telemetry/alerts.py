"""Alerts: rules over recent traffic and live status, evaluated periodically, sent to the log and a
webhook once when they fire and once when they resolve.

``RecentRequests`` (an ``Observer``) counts the finished requests of the last ``window_s`` in fixed
time buckets (with a latency histogram) for the error rate and p95 latency rules; provider health and
budget use are read from the ``ccrouter.status`` sources. ``Alerter.evaluate`` compares the active
alerts with those already announced: a new one is sent as ``firing``, one that stopped holding as
``resolved``, one still active is not repeated. A webhook that fails is retried at the next evaluation.
With ``state.redis_url`` one instance evaluates and sends for all (``ccrouter.telemetry.alert_state``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson

from ccrouter.config import AlertsConfig
from ccrouter.exchange import Exchange
from ccrouter.resilience.buckets import BucketRing
from ccrouter.status import BudgetStatusSource, ProviderStatusSource
from ccrouter.telemetry.alert_state import TICK as LEASE_TICK
from ccrouter.telemetry.alert_state import AlertState, Announced, LocalAlertState
from ccrouter.telemetry.redact import Redactor

__all__ = ["Alert", "Alerter", "Notice", "RecentRequests", "RecentSummary", "WebhookSender", "p95"]

log = logging.getLogger("ccrouter.alerts")

Clock = Callable[[], float]


def _is_error(exchange: Exchange) -> bool:
    # Client mistakes (400, 401, 404, a budget block) are not the gateway failing; 429 and 5xx are,
    # and so is a stream that broke after its first byte (status 200, error_type set).
    if exchange.status >= 400:
        return exchange.status >= 500 or exchange.status == 429
    return exchange.error_type is not None


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# Request times in a fixed histogram: bin 0 below 1 ms, then 10 log-spaced bins per decade up to 10^4 s,
# then one overflow bin. Each bin keeps a count and a sum, so p95 is the mean of the bin holding the
# nearest-rank request: exact when that bin's requests took the same time, else within the bin (26%).
_BINS_PER_DECADE = 10
_FIRST_BIN_S = 0.001
_BINS = 2 + 7 * _BINS_PER_DECADE
# Fields of a time bucket: requests, failed requests, then the bin counts, then the bin sums.
_COUNT, _FAILED, _BIN_COUNT = 0, 1, 2
_BIN_SUM = _BIN_COUNT + _BINS
# The window is counted in 60 buckets (5 s for the default 300 s): a request counts up to window_s/60 longer.
_BUCKETS_PER_WINDOW = 60


def _latency_bin(duration_s: float) -> int:
    if duration_s < _FIRST_BIN_S:
        return 0
    return min(_BINS - 1, 1 + int(_BINS_PER_DECADE * math.log10(duration_s / _FIRST_BIN_S)))


@dataclass(frozen=True, slots=True)
class RecentSummary:
    """The requests of the window: how many, how many failed, and their p95 time (None when empty)."""

    requests: int
    failed: int
    p95_s: float | None


class RecentRequests:
    """The ``Observer`` counting the requests of the last ``window_s``: fixed time buckets of counts and
    a latency histogram, so memory does not grow with traffic."""

    def __init__(self, window_s: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._ring = BucketRing(window_s, window_s / _BUCKETS_PER_WINDOW, _BIN_SUM + _BINS)

    def on_exchange(self, exchange: Exchange) -> None:
        if exchange.endpoint == "models":
            return  # a listing says nothing about model traffic
        now, ring = self._clock(), self._ring
        duration = exchange.duration_s or 0.0
        bucket = ring.bucket(now)
        ring.bump(bucket, _COUNT)
        if _is_error(exchange):
            ring.bump(bucket, _FAILED)
        latency_bin = _latency_bin(duration)
        ring.bump(bucket, _BIN_COUNT + latency_bin)
        ring.bump(bucket, _BIN_SUM + latency_bin, duration)

    def snapshot(self) -> RecentSummary:
        ring = self._ring
        ring.expire(self._clock())
        totals = ring.totals
        # Counts are sums of 1.0, exact in a float.
        requests = int(totals[_COUNT])
        return RecentSummary(requests, int(totals[_FAILED]), _histogram_p95(totals, requests))


def _histogram_p95(totals: Sequence[float], requests: int) -> float | None:
    """The nearest-rank 95th percentile from the histogram: the mean time of the bin holding it."""
    rank = max(1, math.ceil(0.95 * requests))
    seen = 0
    for i in range(_BINS):
        count = int(totals[_BIN_COUNT + i])
        seen += count
        if count and seen >= rank:
            return totals[_BIN_SUM + i] / count
    return None


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert condition that holds. ``key`` identifies it across evaluations."""

    name: str
    severity: Literal["warning", "critical"]
    summary: str
    labels: dict[str, str]
    value: float
    threshold: float

    @property
    def key(self) -> str:
        return self.name + "|" + ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


@dataclass(slots=True)
class Notice:
    """What is sent: an alert firing or resolved."""

    status: Literal["firing", "resolved"]
    alert: Alert
    started_at: float
    resolved_at: float | None = None

    def payload(self) -> dict[str, Any]:
        a = self.alert
        return {
            "source": "ccrouter",
            "status": self.status,
            "alert": a.name,
            "severity": a.severity,
            "summary": a.summary,
            "labels": a.labels,
            "value": a.value,
            "threshold": a.threshold,
            "started_at": self.started_at,
            "resolved_at": self.resolved_at,
        }


Sender = Callable[[Notice], Awaitable[bool]]


class WebhookSender:
    """POSTs each notice as JSON. True when the receiver answered 2xx."""

    def __init__(self, url: str, timeout_s: float, redactor: Redactor) -> None:
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._redactor = redactor
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, notice: Notice) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = self._redactor.bytes(orjson.dumps(notice.payload()))
        try:
            async with self._session.post(
                self._url, data=body, headers={"content-type": "application/json"}
            ) as response:
                await response.read()
                ok = 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alert webhook failed (%s): will retry at the next evaluation", type(exc).__name__)
            return False
        if not ok:
            log.warning("alert webhook answered %d: will retry at the next evaluation", response.status)
        return ok

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@dataclass(slots=True)
class Alerter:
    """Evaluates the rules and announces changes. ``run`` loops every ``config.interval_s``; with a
    shared ``state`` (``RedisAlertState``) only the instance holding its lease evaluates and sends."""

    config: AlertsConfig
    recent: RecentRequests
    status_sources: Sequence[ProviderStatusSource] = ()
    budget_source: BudgetStatusSource | None = None
    senders: Sequence[Sender] = ()
    clock: Clock = time.time
    # What is announced as firing, and who may announce (``ccrouter.telemetry.alert_state``).
    state: AlertState = field(default_factory=LocalAlertState)
    # When each alert holding now was first seen holding (its ``started_at``).
    _since: dict[str, float] = field(default_factory=dict)
    # Notices logged and not yet delivered: a retry is not logged again.
    _logged: set[tuple[str, str]] = field(default_factory=set)

    async def run(self) -> None:
        if not self.state.shared:
            while True:
                await asyncio.sleep(self.config.interval_s)
                await self._round()
                _raise_if_cancelling()
        # The lease is kept by its own task, so a slow webhook does not let it lapse; taking it over
        # starts a round at once.
        took_over = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(took_over), name="ccrouter-alerts-lease")
        try:
            while True:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that arrives as
                # its timeout fires, and the loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.interval_s):
                        await took_over.wait()
                took_over.clear()
                if self.state.may_send():
                    await self._round()
                _raise_if_cancelling()
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep_lease(self, took_over: asyncio.Event) -> None:
        while True:
            was = self.state.holding
            try:
                if await self.state.keep(self.config.interval_s) and not was:
                    took_over.set()
            except Exception:  # the task's boundary: a failed renewal must not end alerting
                log.exception("keeping the alert lease failed")
            _raise_if_cancelling()
            await asyncio.sleep(self.config.interval_s * LEASE_TICK)

    async def _round(self) -> None:
        try:
            await self.evaluate()
        except Exception:  # the task's boundary: one failed round (a store outage) must not end alerting
            log.exception("alert evaluation failed")

    async def evaluate(self) -> list[Notice]:
        """One round: returns the notices delivered (or logged, without a webhook) this round. What
        is announced is ``state``'s: an alert announced firing that no longer holds is sent as
        resolved (also one a previous holder announced), one holding and not announced as firing;
        a notice whose delivery failed is sent again at the next round, if still due."""
        now = self.clock()
        holding = {a.key: a for a in await self.check()}
        self._since = {key: self._since.get(key, now) for key in holding}
        announced = await self.state.announced()
        notices = [
            Notice("resolved", Alert(**entry.alert), entry.started_at, now)
            for key, entry in announced.items()
            if key not in holding
        ]
        notices += [
            Notice("firing", alert, self._since[key])
            for key, alert in holding.items()
            if key not in announced
        ]
        return await self._deliver(notices)

    async def _deliver(self, notices: list[Notice]) -> list[Notice]:
        delivered: list[Notice] = []
        for notice in notices:
            if not self.state.may_send():
                break  # the lease lapsed mid-round: its next holder sends what is left
            tag = (notice.status, notice.alert.key)
            if tag not in self._logged:
                _log_notice(notice)
                self._logged.add(tag)
            job = asyncio.ensure_future(self._send(notice))
            try:
                sent = await asyncio.shield(job)
            except asyncio.CancelledError:
                # Stopping: the webhook may have answered already, so the notice is finished and
                # recorded (bounded by the webhook timeout) rather than sent again by the next holder.
                await job
                raise
            if sent:
                delivered.append(notice)
                self._logged.discard(tag)
        due = {(n.status, n.alert.key) for n in notices}
        self._logged &= due
        return delivered

    async def _send(self, notice: Notice) -> bool:
        results = [await send(notice) for send in self.senders]
        if all(results):
            entry = Announced(notice.alert.key, dataclasses.asdict(notice.alert), notice.started_at)
            await self.state.record(notice.status, entry)
        return all(results)

    async def check(self) -> list[Alert]:
        """The alerts that hold now."""
        alerts = self._traffic_alerts()
        cfg = self.config
        for source in self.status_sources:
            for status in source.provider_statuses():
                if status.breaker == "open" or status.health_score < cfg.provider_health:
                    alerts.append(
                        Alert(
                            "ProviderUnhealthy",
                            "critical" if status.breaker == "open" else "warning",
                            f"{status.provider},{status.model}: health {status.health_score:.2f},"
                            f" breaker {status.breaker}",
                            {"provider": status.provider, "model": status.model},
                            status.health_score,
                            cfg.provider_health,
                        )
                    )
        if self.budget_source is not None:
            for budget in await self.budget_source.budget_statuses():
                used = budget.used_usd / budget.limit_usd
                if used >= cfg.budget_used:
                    alerts.append(
                        Alert(
                            "BudgetNearLimit",
                            "critical" if used >= 1 else "warning",
                            f"budget {budget.name} ({budget.scope}, {budget.period}): ${budget.used_usd:.4f}"
                            f" of ${budget.limit_usd:g} spent ({used:.0%}); action {budget.action}",
                            {"budget": budget.name, "scope": budget.scope, "period": budget.period},
                            round(used, 4),
                            cfg.budget_used,
                        )
                    )
        return alerts

    def _traffic_alerts(self) -> list[Alert]:
        cfg = self.config
        recent = self.recent.snapshot()
        if recent.requests < cfg.min_requests:
            return []
        alerts = []
        rate = recent.failed / recent.requests
        if rate >= cfg.error_rate:
            alerts.append(
                Alert(
                    "HighErrorRate",
                    "critical",
                    f"{rate:.0%} of the last {recent.requests} requests failed (window {cfg.window_s:g}s)",
                    {},
                    round(rate, 4),
                    cfg.error_rate,
                )
            )
        latency = recent.p95_s
        if latency is not None and latency >= cfg.p95_latency_s:
            alerts.append(
                Alert(
                    "HighLatencyP95",
                    "warning",
                    f"p95 request time {latency:.2f}s over the last {recent.requests} requests",
                    {},
                    round(latency, 4),
                    cfg.p95_latency_s,
                )
            )
        return alerts


def _raise_if_cancelling() -> None:
    # A cancel that lands as a timeout fires inside a client library can come out as TimeoutError
    # (an OSError, caught as Redis or webhook trouble): the task still counts the request, so the
    # loop ends instead of running on past its stop.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _log_notice(notice: Notice) -> None:
    alert = notice.alert
    level = logging.INFO if notice.status == "resolved" else logging.WARNING
    log.log(level, "alert %s %s: %s", alert.name, notice.status, alert.summary, extra={"alert": alert.key})
