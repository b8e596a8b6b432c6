"""The dashboard's Overview kept open during a bench run (mode ``a2o-live``): one SSE client on
``GET /api/live`` for the whole run, reading every snapshot as a browser's EventSource does, and
reconnecting when a stream ends (they end after 5 minutes). Runs as its own process (``--role
live``), so its reading costs the gateway nothing but the stream itself; it logs what it read."""

from __future__ import annotations

import http.client
import os
import sys
import time

from common import HOST

# The admin token the a2o-live gateway is configured with (``targets.start_ccrouter``).
TOKEN_ENV = "CCROUTER_BENCH_LIVE_TOKEN"


def run(port: int) -> None:
    token = os.environ[TOKEN_ENV]
    snapshots, opened, started = 0, 0, time.monotonic()
    while True:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            connection.request("GET", "/api/live", headers={"authorization": f"Bearer {token}"})
            response = connection.getresponse()
            if response.status != 200:
                print(f"/api/live answered {response.status}: {response.read()[:200]!r}", flush=True)
                time.sleep(1)
                continue
            opened += 1
            print(f"stream {opened} open", flush=True)
            for line in response:
                if line.startswith(b"data: "):
                    snapshots += 1
                    if snapshots % 5 == 0:
                        elapsed = time.monotonic() - started
                        print(f"{snapshots} snapshots in {elapsed:.0f} s ({len(line)} B each)", flush=True)
        except OSError as exc:  # the gateway not up yet, or stopping
            print(f"stream error: {exc}", file=sys.stderr, flush=True)
            time.sleep(0.5)
        finally:
            connection.close()
