"""``ccrouter logs`` of a gateway without a log file: its ``GET /api/logs`` (``ccrouter.api.logs``).

Where it is and the token that reads it come from the state file the gateway writes at start
(``<config dir>/statusline.json``, ``ccrouter.statusline.state``). The last N records, then with
``follow`` a poll every 0.5 s from the seq the previous answer gave. Standard library HTTP (loopback,
no proxy), a short timeout per call.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import typer
from rich.console import Console

from ccrouter.cli.common import fail
from ccrouter.logfile import Record, render

__all__ = ["POLL_S", "GatewayLogs"]

POLL_S = 0.5
_TIMEOUT_S = 3.0
_MAX_BYTES = 64 * 1024 * 1024
# The API's largest page (``ccrouter.telemetry.logring.MAX_RECORDS``; importing it would load the
# whole telemetry package into this command).
MAX_RECORDS = 2_000


class GatewayLogs:
    """The log API of the gateway a state file names."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url.rstrip("/")
        self._token = token
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def find(cls, config_dir: Path) -> GatewayLogs | None:
        """The gateway of ``config_dir``'s state file if it answers, else None."""
        from ccrouter.statusline.state import read_state

        state = read_state(str(config_dir))
        if state is None:
            return None
        source = cls(state.url, state.token)
        try:
            source.page(limit=0)
        except OSError:  # refused, timed out: no gateway there (a state file left by one that stopped)
            return None
        return source

    def page(
        self, *, since: int | None = None, limit: int, request_id: str | None = None, level: str | None = None
    ) -> tuple[list[Record], int]:
        """One call: the records (as ``ccrouter.logfile`` reads them) and the next seq. Raises
        ``OSError`` when the gateway does not answer; exits with its error when it refuses."""
        query: dict[str, str | int] = {"limit": limit}
        if since is not None:
            query["since"] = since
        if request_id is not None:
            query["request"] = request_id
        if level is not None:
            query["level"] = level
        request = urllib.request.Request(
            f"{self._url}/api/logs?{urllib.parse.urlencode(query)}",
            headers={"authorization": f"Bearer {self._token}"},
        )
        try:
            with self._opener.open(request, timeout=_TIMEOUT_S) as response:
                body = orjson.loads(response.read(_MAX_BYTES))
        except urllib.error.HTTPError as exc:
            fail(f"the gateway at {self._url} refused its logs: HTTP {exc.code} {_message(exc)}")
        except urllib.error.URLError as exc:
            raise OSError(str(exc.reason)) from None
        except orjson.JSONDecodeError:
            fail(f"the gateway at {self._url} answered its logs with something other than JSON")
        records = [
            Record(orjson.dumps(item["record"]).decode(), item["record"]) for item in body.get("records", [])
        ]
        return records, int(body["next"])

    def show(
        self,
        *,
        lines: int,
        follow: bool,
        request_id: str | None,
        level: str | None,
        as_json: bool,
        out: Console,
    ) -> None:
        def show(record: Record) -> None:
            if as_json:
                typer.echo(record.text)
            else:
                out.print(render(record), soft_wrap=True)

        try:
            records, since = self.page(limit=min(lines, MAX_RECORDS), request_id=request_id, level=level)
            for record in records:
                show(record)
            while follow:
                time.sleep(POLL_S)
                records, since = self.page(since=since, limit=MAX_RECORDS, request_id=request_id, level=level)
                for record in records:
                    show(record)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
        except OSError as exc:
            fail(f"the gateway at {self._url} stopped answering: {exc}")


def _message(error: urllib.error.HTTPError) -> str:
    try:
        body = orjson.loads(error.read(64 * 1024))
        return str(body["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError, OSError):
        return error.reason or ""
