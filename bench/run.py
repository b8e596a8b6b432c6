#!/usr/bin/env python3
"""ccrouter benchmark suite: ``make bench`` (ccrouter vs the floor) and ``make bench-peers`` (+ LiteLLM
and claude-code-router). See bench/README.md.

    .venv/bin/python bench/run.py                 # fake upstream, floor, ccrouter a2o / a2a / o2o
    .venv/bin/python bench/run.py --peers         # ... and the peers from bench/.peers
    .venv/bin/python bench/run.py --soak 50000    # RSS of ccrouter a2o after 1k, 5k, ... 50k requests
    .venv/bin/python bench/run.py --profile 20    # py-spy on ccrouter a2o for 20 s under load
    .venv/bin/python bench/run.py --quick         # a smoke run of a few seconds

Everything listens on 127.0.0.1; every process the run starts is in its own session and stopped at
the end. Results go to bench/results/ (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import HERE, RESULTS, log

if TYPE_CHECKING:
    from targets import Launcher, Target

CLIENT_TIMEOUT_S = 600


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for package in ("ccrouter", "aiohttp", "uvloop", "orjson", "pydantic", "tiktoken"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    try:
        out["git"] = (
            subprocess.run(
                ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
            or None
        )
    except OSError:
        out["git"] = None
    return out


def _run_role(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run ``spec`` in a fresh client process (its own session, killed on timeout); its JSON result."""
    spec_path, out_path = workdir / "client-spec.json", workdir / "client-out.json"
    spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
    argv = [sys.executable, str(Path(__file__).resolve()), "--role", "client", "--spec", str(spec_path)]
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        code = proc.wait(timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the client did not finish within {CLIENT_TIMEOUT_S} s") from None
    finally:
        if proc.poll() is None:  # timed out, or we are being stopped: the client goes too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if code != 0 or not out_path.exists():
        raise RuntimeError(f"the client failed (exit {code})")
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


def _write(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    text = json.dumps(payload, indent=2)
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    return path


def _start_gateways(
    launcher: Launcher, upstream: str, args: argparse.Namespace
) -> tuple[list[Target], dict[str, str]]:
    import targets as tg
    from payloads import CLIENT_MODEL

    found = tg.direct_targets(upstream)
    found.append(tg.start_floor(launcher, upstream))
    for mode in args.modes.split(","):
        found.append(tg.start_ccrouter(launcher, mode, upstream, args.workers))
        for variant in args.variant:
            found.append(tg.start_ccrouter(launcher, mode, upstream, args.workers, Path(variant)))
    skipped: dict[str, str] = {}
    if args.peers:
        installed = tg.peers_installed()
        if not installed["litellm"]:
            skipped["litellm"] = f"not installed ({tg.LITELLM} missing): run `make bench-peers`"
        else:
            try:
                found += tg.start_litellm(launcher, upstream, CLIENT_MODEL)
            except RuntimeError as exc:
                skipped["litellm"] = str(exc)
        if not installed["ccr"]:
            skipped["ccr"] = f"not installed ({tg.CCR_CLI} missing): run `make bench-peers`"
        elif shutil.which("node") is None:
            skipped["ccr"] = "node is not on PATH"
        else:
            try:
                found.append(tg.start_ccr(launcher, upstream))
            except RuntimeError as exc:
                skipped["ccr"] = str(exc)
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")
    return found, skipped


def bench(args: argparse.Namespace) -> int:
    import payloads
    import report
    from client import Knobs
    from targets import Launcher, start_upstream

    knobs = Knobs.quick() if args.quick else Knobs()
    workdir = Path(tempfile.mkdtemp(prefix="ccrouter-bench-"))
    launcher = Launcher(workdir)
    began = time.perf_counter()
    try:
        upstream, _, _ = start_upstream(launcher)
        found, skipped = _start_gateways(launcher, upstream, args)
        specs = [t.as_dict() for t in found]
        tallies = _run_role({"mode": "bench", "targets": specs, "knobs": asdict(knobs)}, workdir)
    finally:
        launcher.stop_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = report.summarise(specs, tallies)
    bodies = payloads.request_bodies()
    info = (
        f"body {len(bodies.anthropic)} B Anthropic / {len(bodies.openai)} B OpenAI (Claude Code shaped); "
        f"stream {payloads.stream_frames('anthropic')} events; seq {knobs.rounds}x{knobs.per_round} "
        f"(peers {knobs.rounds}x{knobs.per_round_slow}) interleaved; streams {knobs.stream_rounds}x"
        f"{knobs.stream_per_round}; rps: 16 clients, {knobs.tput_seconds:g} s/target; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}; workers {args.workers}"
    )
    checks = report.checks(summary)
    print(info)
    print(report.table(summary))
    print(
        "+x: added to the direct client->upstream time (direct rows: their absolute time); "
        "(n.nx): ratio to the floor in this run"
    )
    print(report.checks_text(checks))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    for name, row in summary.items():
        if row["errors"] or row["warmup_errors"]:
            errors = f"{row['errors']} errors ({row['warmup_errors']} in warm-up)"
            print(f"{name}: {errors}, first: {row['first_error']}")
    elapsed = time.perf_counter() - began
    path = _write(
        "bench",
        {
            "info": info,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "elapsed_s": elapsed,
            "versions": _versions(),
            "knobs": asdict(knobs),
            "skipped": skipped,
            "targets": specs,
            "summary": summary,
            "checks": [{"what": w, "ok": ok, "figure": f} for w, ok, f in checks],
            "raw": tallies if args.raw else None,
        },
    )
    print(f"total {elapsed:.0f} s; wrote {path.relative_to(HERE.parent)}")
    return 1 if any(row["errors"] for row in summary.values()) else 0


def soak_or_profile(args: argparse.Namespace) -> int:
    import spy
    from soak import soak_text
    from targets import Launcher, start_ccrouter, start_floor, start_upstream

    workdir = Path(tempfile.mkdtemp(prefix="ccrouter-bench-"))
    launcher = Launcher(workdir)
    try:
        upstream, _, _ = start_upstream(launcher)
        variant = Path(args.variant[0]) if args.variant else None
        if args.mode == "floor":  # to compare a profile with the least a gateway does
            target = start_floor(launcher, upstream).as_dict()
        else:
            target = start_ccrouter(launcher, args.mode, upstream, args.workers, variant).as_dict()
        if args.soak:
            spec = {
                "mode": "soak",
                "target": target,
                "total": args.soak,
                "concurrency": args.concurrency,
                "deadline_s": args.deadline,
                "every": args.stream_every,
            }
            result = _run_role(spec, workdir)
            print(
                f"soak: ccrouter {args.mode}, {args.concurrency} concurrent clients, "
                f"1 in {args.stream_every} streamed"
            )
            print(soak_text(result))
            path = _write("soak", {"versions": _versions(), "target": target, **result})
        else:
            raw = workdir / "profile.raw"
            recorder = spy.record(target["pid"], args.profile, raw, native=args.native)
            time.sleep(0.5)  # py-spy attaches
            _run_role(
                {"mode": "load", "target": target, "seconds": args.profile, "every": args.stream_every},
                workdir,
            )
            _, err = recorder.communicate(timeout=args.profile + 30)
            if not raw.exists():
                raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
            text = spy.summarise(raw, native=args.native)
            print(text)
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, RESULTS / f"profile-{args.mode}.raw")
            path = RESULTS / f"profile-{args.mode}.txt"
            path.write_text(text + "\n")
    finally:
        launcher.stop_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


def role(args: argparse.Namespace) -> int:
    if args.role == "upstream":
        import upstream

        upstream.run(args.port)
    elif args.role == "live":
        import live_watch

        live_watch.run(args.port)
    elif args.role == "floor":
        import floor

        floor.run(args.port, args.upstream)
    elif args.role == "client":
        spec = json.loads(Path(args.spec).read_text())
        if spec["mode"] == "bench":
            from client import Knobs, run

            result: Any = run(spec["targets"], Knobs(**spec["knobs"]))
        elif spec["mode"] == "soak":
            from soak import soak

            result = soak(
                spec["target"], spec["total"], spec["concurrency"], spec["deadline_s"], spec["every"]
            )
        else:
            from soak import load

            result = {"requests": load(spec["target"], spec["seconds"], spec["every"])}
        Path(spec["out"]).write_text(json.dumps(result))
    else:
        raise SystemExit(f"unknown role {args.role}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", action="store_true", help="include LiteLLM and claude-code-router")
    parser.add_argument("--modes", default="a2o,a2a,o2o", help="ccrouter modes to run (default: all three)")
    parser.add_argument("--workers", type=int, default=1, help="ccrouter serve --workers N")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="DIR",
        help="also run ccrouter from DIR/ccrouter (a patched copy), in every mode: A/B in one run",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds of each phase (smoke test)")
    parser.add_argument(
        "--soak", type=int, default=0, metavar="N", help="N requests to ccrouter, RSS along the way"
    )
    parser.add_argument("--profile", type=float, default=0, metavar="S", help="py-spy ccrouter for S seconds")
    parser.add_argument(
        "--native", action="store_true", help="--profile: native stacks too, waits left out (see spy.py)"
    )
    parser.add_argument("--mode", default="a2o", help="ccrouter mode for --soak / --profile, or floor")
    parser.add_argument("--concurrency", type=int, default=8, help="clients for --soak")
    parser.add_argument(
        "--stream-every",
        type=int,
        default=10,
        metavar="K",
        help="--soak / --profile: stream one request in K (1: all, 0: none)",
    )
    parser.add_argument("--deadline", type=float, default=300, help="seconds --soak may take at most")
    parser.add_argument("--raw", action="store_true", help="keep every sample in the JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, logs)")
    parser.add_argument("--role", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--spec", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return role(args)
    # SIGTERM (make interrupted, a CI timeout) must still stop the servers: unwind through finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return soak_or_profile(args) if args.soak or args.profile else bench(args)
    except RuntimeError as exc:
        log(f"bench failed: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
