"""Scrubbing configured secrets out of text: log lines, error bodies, alert messages, provider errors.

The secrets are the configured values themselves (provider keys, client keys, the admin token, store
and Redis URLs, the alert webhook), collected once at startup by ``secrets_of``; each provider also
scrubs its own keys out of the errors it raises (``providers.http``) with the same ``Redactor``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from ccrouter.config import Settings

__all__ = [
    "IDENTIFYING_CHARS",
    "MIN_KEY_LENGTH",
    "MIN_PREFIX",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Redactor",
    "secrets_of",
]

REDACTED = "[redacted]"
# Shorter values are placeholders (Ollama's ``api_key: ollama``), not secrets; redacting them would
# mangle ordinary words such as a provider's name.
MIN_SECRET_LENGTH = 8
# Values this long made of token characters are keys: their starts and masked forms are redacted too.
# (URLs are not: their start, ``postgresql://postgres@``, is in every driver message and is no secret.)
MIN_KEY_LENGTH = 16
# An echoed start of a key is redacted from this many characters past its vendor's public prefix...
IDENTIFYING_CHARS = 3
# ... and never shorter than this (keys with a short public prefix or none, ``sk-0123...``).
MIN_PREFIX = 8
_KEY_CHARS = re.compile(r"[A-Za-z0-9_\-.~+/=]+")
# Public prefixes every key of a vendor starts with, as the vendors document their key formats:
# Anthropic (console and admin keys), OpenAI (project, service account, admin, legacy), OpenRouter,
# Groq, xAI, Google API keys (Gemini), GitHub tokens (GitHub Models), Hugging Face. Longest first.
_VENDOR_PREFIXES = sorted(
    ("sk-ant-api03-", "sk-ant-admin01-", "sk-ant-", "sk-proj-", "sk-svcacct-", "sk-admin-", "sk-or-v1-",
     "sk-", "gsk_", "xai-", "AIzaSy", "AIza", "ghp_", "github_pat_", "hf_"),
    key=len,
    reverse=True,
)  # fmt: skip
# Any other key: up to four short segments, each ending in "-" or "_" (``ck-team-``), are taken
# for a public prefix.
_PUBLIC_PREFIX = re.compile(r"(?:[A-Za-z][A-Za-z0-9]{0,7}[-_]){0,4}")
# The rest of a token that starts like our key: a truncated or altered copy is redacted whole.
_TOKEN_TAIL = r"[A-Za-z0-9_\-]*"
_TOKEN_TAIL_CHARS = re.compile(r"[A-Za-z0-9_\-]+")
# How providers mask the middle of a key: "***", "...", "xxxx", "•••", "…" (and mixes, "***...").
# One atomic run, tried only where a run starts (a run of mask characters is matched once, not
# once per suffix); ``_unmask`` keeps the runs of three or more, or holding an ellipsis.
_MASK = r"(?<![*.xX\u2022\u2026])(?P<run>(?>[*.xX\u2022\u2026]+))"
_MASK_RUNS = ("***", "...", "xxx", "XXX", "\u2022\u2022\u2022", "\u2026")
# How much of a key's start and end a masked form may show.
_MASK_START = 24
_MASK_END = range(8, 3, -1)


def _prefix_length(key: str) -> int:
    """How long an echoed start of ``key`` must be to be redacted."""
    shared = next((len(prefix) for prefix in _VENDOR_PREFIXES if key.startswith(prefix)), None)
    if shared is None:
        public = _PUBLIC_PREFIX.match(key)
        shared = public.end() if public is not None else 0
    return min(len(key), max(shared + IDENTIFYING_CHARS, MIN_PREFIX))


def secrets_of(settings: Settings) -> set[str]:
    """Every secret value the settings hold."""
    values: list[SecretStr | None] = [
        settings.server.admin_token,
        settings.server.ui.session_secret,
        settings.alerts.webhook_url,
    ]
    values += [key if isinstance(key, SecretStr) else key.key for key in settings.server.api_keys]
    for provider in settings.providers:
        values += provider.secrets()
    out = {v.get_secret_value() for v in values if v is not None}
    proxies = [provider.proxy for provider in settings.providers if provider.proxy is not None]
    for url in (settings.store.url, settings.state.redis_url, *proxies):
        if url is not None:
            out.add(url.get_secret_value())
            # The password alone may appear in a driver's error message.
            password = urlsplit(url.get_secret_value()).password
            if password:
                out.add(password)
    return out


class Redactor:
    """Replaces any of ``secrets`` found in a string with ``[redacted]``: the whole value and, for
    key-like values (``MIN_KEY_LENGTH`` or more token characters: API keys, tokens), the forms in
    which providers echo a key back:

    - its start: the public prefix every key of a vendor shares (``sk-ant-api03-``, ``sk-proj-``,
      ``gsk_``) plus ``IDENTIFYING_CHARS`` of the key's own characters, or ``MIN_PREFIX`` characters,
      whichever is longer; the rest of the token it starts goes with it (``sk-ant-api03-AbC...``);
    - a masked form: any start of the key (even none), a run of mask characters (``***``, ``...``,
      ``xxx``, ``•••``, ``…``), then the key's last four to eight characters (``sk-ant***vvvv``,
      ``sk-proj-abcd****wxyz``, ``sk-ant-...vvvv``).

    It runs on log lines and error bodies, never on a successful stream. The cost stays that of one
    search over literal alternatives (the regex engine skips ahead on their first characters); the
    masked forms are looked for only in text holding a mask run."""

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        keys = [s for s in kept if len(s) >= MIN_KEY_LENGTH and _KEY_CHARS.fullmatch(s)]
        # Whole values longest first, so a secret that contains another is replaced whole; a key
        # made only of token-tail characters is covered by its start's branch.
        branches = [re.escape(s) for s in kept if not (s in keys and _TOKEN_TAIL_CHARS.fullmatch(s))]
        branches += [re.escape(key[: _prefix_length(key)]) + _TOKEN_TAIL for key in keys]
        self._pattern = re.compile("|".join(branches)) if branches else None
        # Masked forms: a mask run then a key's end; the key's start shown before it is found by
        # ``_unmask`` (a regex alternative for every possible start would make each search slow).
        self._keys_by_end: dict[str, list[str]] = {}
        for key in keys:
            for n in _MASK_END:
                self._keys_by_end.setdefault(key[-n:], []).append(key)
        ends = sorted(self._keys_by_end, key=len, reverse=True)
        self._masked = re.compile(f"{_MASK}(?P<end>{'|'.join(map(re.escape, ends))})") if ends else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._masked is not None and any(run in value for run in _MASK_RUNS):
            value = self._unmask(value)
        if self._pattern is None:
            return value
        return self._pattern.sub(REDACTED, value)

    def _unmask(self, value: str) -> str:
        assert self._masked is not None
        out: list[str] = []
        done = 0
        for match in self._masked.finditer(value):
            if len(match["run"]) < 3 and "\u2026" not in match["run"]:
                continue  # "a.b" or "1x2": not a mask
            start = match.start()
            shown = max(self._shown_start(value, start, done, key) for key in self._keys_by_end[match["end"]])
            out += [value[done : start - shown], REDACTED]
            done = match.end()
        if not out:
            return value
        out.append(value[done:])
        return "".join(out)

    @staticmethod
    def _shown_start(value: str, mask: int, floor: int, key: str) -> int:
        """How many characters right before ``mask`` are the start of ``key`` (not before ``floor``)."""
        for shown in range(min(_MASK_START, len(key), mask - floor), 0, -1):
            if value.startswith(key[:shown], mask - shown):
                return shown
        return 0

    def bytes(self, value: bytes) -> bytes:
        if self._pattern is None:
            return value
        return self.text(value.decode("utf-8", "replace")).encode()

    def value(self, value: Any) -> Any:
        """Strings, and strings inside lists, tuples and dicts; other values as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
