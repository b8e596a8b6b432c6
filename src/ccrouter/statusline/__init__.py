"""``ccrouter statusline``: one short line for Claude Code's status bar, read from the gateway.

Claude Code runs the statusline command at most every 300 ms, so this package imports only the
standard library (no typer, rich, pydantic or yaml): ``state`` (the file the gateway writes at start
to say where it listens), ``fetch`` (the session API over a raw socket, and the ledger's SQLite file
when the gateway does not answer), ``line`` (the template and its fields) and ``main`` (the command).
The console script's launcher (``ccrouter.cli.launch``) runs ``main`` without importing the typer app.
"""
