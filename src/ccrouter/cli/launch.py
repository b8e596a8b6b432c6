"""The ``ccrouter`` console script: ``ccrouter statusline`` without the typer app, anything else with it.

Claude Code runs the statusline command at most every 300 ms, and importing typer and rich costs
~100 ms: ``statusline`` runs ``ccrouter.statusline.main`` (standard library only) straight away. Its
``--help`` goes to the typer app, which registers the same command (``ccrouter.cli.statusline``), so
``ccrouter --help`` lists it and ``python -m ccrouter.cli.main statusline`` behaves the same.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["statusline"] and not any(arg in ("--help", "-h") for arg in args[1:]):
        from ccrouter.statusline.main import main as statusline

        raise SystemExit(statusline(args[1:]))
    from ccrouter.cli.main import main as cli

    cli(args)


if __name__ == "__main__":
    main()
