"""The statusline's fields and its ``--format`` template (``str.format`` with named fields).

Every field is always there; a figure nobody knows (no tokens/s for an answer without output, no
spend before the first priced request) formats as ``-`` whatever its format spec, so a template such
as ``{tps:.0f}`` never fails on missing data. Standard library only.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_FORMAT", "FIELDS", "MISSING", "TemplateError", "fields_for", "render"]

DEFAULT_FORMAT = "{route} {scenario} ${spend_today:.2f} today {tps:.0f} tok/s {marker}"

FIELDS: dict[str, str] = {
    "route": "provider,model that served the session's last request",
    "provider": "provider of that route",
    "model": "model of that route",
    "scenario": "the routing scenario (default, background, think, long_context, ...)",
    "spend_today": "this session's spend through the gateway today, USD (a number: {spend_today:.2f})",
    "requests_today": "this session's requests through the gateway today",
    "tps": "output tokens per second of the last answer (a number: {tps:.0f})",
    "output_tokens": "output tokens of the last answer",
    "marker": "'! fallback' when a fallback served the last request, '! cooling 12s' or '! down' "
    "while its provider cools down, '(ledger)' when read from the ledger; else empty",
    "fallback": "'fallback' when a fallback served the last request, else empty",
    "cooling": "the routes cooling down now, as 'provider,model state 12s', else empty",
    "source": "'gateway' or 'ledger': where the figures came from",
    "cc_model": "Claude Code's model name (from its stdin)",
    "cc_cost": "Claude Code's own cost estimate for the session, USD (a number)",
    "context": "Claude Code's context window use, percent (a number)",
    "dir": "the name of Claude Code's current directory",
    "session": "the first 8 characters of the session id",
}


class TemplateError(Exception):
    """The ``--format`` template names an unknown field or is malformed."""


class _Missing:
    """A figure nobody knows: ``-`` under any format spec."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return "-"

    def __str__(self) -> str:
        return "-"


MISSING = _Missing()


class _Fields(dict[str, object]):
    def __missing__(self, key: str) -> object:
        raise TemplateError(f"unknown field {{{key}}} (fields: {', '.join(FIELDS)})")


def _number(value: object) -> object:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else MISSING


def _get(data: object, *path: str) -> object:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def fields_for(summary: dict[str, object] | None, stdin: dict[str, object]) -> dict[str, object]:
    """The template's fields from a session summary (``ccrouter.statusline.summary``; None: nothing
    known) and Claude Code's stdin JSON."""
    last = _get(summary, "last_request")
    last = last if isinstance(last, dict) else {}
    cooling = _get(summary, "cooling")
    cooling = [c for c in cooling if isinstance(c, dict)] if isinstance(cooling, list) else []
    source = str(_get(summary, "source") or "-")
    markers = ["! fallback"] if last.get("fallback") else []
    for item in cooling:
        state, wait = item.get("state"), _number(item.get("cooldown_s"))
        if state == "down":
            markers.append("! down")
        elif isinstance(wait, int | float) and wait > 0:
            markers.append(f"! cooling {wait:.0f}s")
        else:
            markers.append(f"! {state}")
    if source == "ledger":
        markers.append("(ledger)")
    directory = _get(stdin, "workspace", "current_dir") or _get(stdin, "cwd")
    session = _get(stdin, "session_id")
    return {
        "route": str(last.get("route") or "-"),
        "provider": str(last.get("provider") or "-"),
        "model": str(last.get("model") or "-"),
        "scenario": str(last.get("scenario") or "-"),
        "spend_today": _number(_get(summary, "today", "spend_usd")),
        "requests_today": _number(_get(summary, "today", "requests")),
        "tps": _number(last.get("tokens_per_s")),
        "output_tokens": _number(last.get("output_tokens")),
        "marker": " ".join(dict.fromkeys(markers)),
        "fallback": "fallback" if last.get("fallback") else "",
        "cooling": ", ".join(
            f"{c.get('route')} {c.get('state')} {_number(c.get('cooldown_s')):.0f}s" for c in cooling
        ),
        "source": source,
        "cc_model": str(_get(stdin, "model", "display_name") or _get(stdin, "model", "id") or "-"),
        "cc_cost": _number(_get(stdin, "cost", "total_cost_usd")),
        "context": _number(_get(stdin, "context_window", "used_percentage")),
        "dir": os.path.basename(str(directory).rstrip("/")) if isinstance(directory, str) else "-",
        "session": session[:8] if isinstance(session, str) else "-",
    }


def render(template: str, fields: dict[str, object]) -> str:
    """The template filled in, on one line: runs of blanks and newlines (around an empty field) become
    one space, and none is left at either end."""
    try:
        text = template.format_map(_Fields(fields))
    except TemplateError:
        raise
    except (ValueError, IndexError, AttributeError, TypeError) as exc:
        # A format spec that does not fit a field's type, an unmatched brace, a positional field...
        raise TemplateError(f"bad template {template!r}: {exc}") from None
    return " ".join(text.split())
