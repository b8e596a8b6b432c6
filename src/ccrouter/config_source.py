"""The config file's text as an admin may see and edit it: every literal secret replaced by a
numbered marker (``__ccrouter_secret_1__``), put back from the file's own value when the edit is
applied, so that an edit made on the masked text keeps every secret it did not touch.

What is a secret: any literal value at a secret key (``SECRET_PATHS``: provider keys and headers,
client keys, the admin token, the session secret, the store, Redis and webhook URLs), and any
configured secret (``telemetry.redact.secrets_of``) found anywhere else in the text, comments
included. A value made of references (``${OPENAI_API_KEY}``, ``${file:...}``) is not a secret and
stays as written. The text is masked in place (comments, order and quoting stay): the YAML is
composed once for the key path and exact span of every scalar.

Putting back is strict: an unknown marker, or one moved where a secret does not belong (a secret
marker must stay the whole value of a secret key), is a ``Problem`` at its key path, so a secret is
never written where the gateway would show it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from ccrouter.config_errors import key_path
from ccrouter.secret_refs import REFERENCE
from ccrouter.telemetry.redact import MIN_SECRET_LENGTH, Redactor

__all__ = ["MARKER", "SECRET_PATHS", "Hidden", "MaskedSource", "Problem", "is_secret_path", "mask", "restore"]

MARKER = re.compile(r"__ccrouter_secret_(\d+)__")
# Key paths whose values are credentials ("[]": any list index, "*": any mapping key). The test
# ``test_secret_paths_cover_every_secret_field`` keeps this in step with the ``SecretStr`` fields.
SECRET_PATHS: tuple[str, ...] = (
    "providers[].api_key",
    "providers[].api_keys[]",
    "providers[].headers.*",
    "providers[].aws_secret_access_key",
    "providers[].aws_session_token",
    "providers[].proxy",
    "providers[].entra.client_secret",
    "server.admin_token",
    "server.api_keys[]",
    "server.api_keys[].key",
    "server.ui.session_secret",
    "store.url",
    "state.redis_url",
    "alerts.webhook_url",
)
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE = "<<"


def _pattern(path: str) -> tuple[str, ...]:
    return tuple(part for part in re.split(r"\.|(\[\])", path) if part)


_PATTERNS = tuple(_pattern(path) for path in SECRET_PATHS)


def is_secret_path(loc: Sequence[int | str]) -> bool:
    """Whether the value at ``loc`` (``("providers", 0, "api_key")``) is a credential."""
    shape = tuple("[]" if isinstance(part, int) else part for part in loc)
    return any(
        len(pattern) == len(shape)
        and all(
            want == got or (want == "*" and got != "[]") for want, got in zip(pattern, shape, strict=True)
        )
        for pattern in _PATTERNS
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an edit: the key path (``config_errors.key_path``) and what is wrong."""

    path: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass(frozen=True, slots=True)
class Hidden:
    """One masked secret. ``token``: its scalar as written (quotes included), put back where the
    marker stands as a whole value; ``raw``: its text, put back where the marker stands inside other
    text; ``path``: where it was (None: outside any value, a comment); ``whole``: it was a whole
    value at a secret key (else a configured secret found inside other text)."""

    marker: str
    token: str
    raw: str
    path: str | None
    whole: bool


@dataclass(frozen=True, slots=True)
class MaskedSource:
    """The masked text and its secrets. ``redacted``: part of a configured key was left in another
    form (its start in a comment, say) and is shown as ``[redacted]``, which an apply would write."""

    text: str
    hidden: tuple[Hidden, ...]
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class _Scalar:
    loc: tuple[int | str, ...]
    start: int
    end: int
    value: str
    tag: str
    is_key: bool


def _scalars(text: str) -> list[_Scalar]:
    """Every scalar of the document with its key path and the exact span of its own token (without
    anchor or tag); raises ``yaml.YAMLError``."""
    starts = {
        token.end_mark.index: token.start_mark.index
        for token in yaml.scan(text, Loader=yaml.SafeLoader)
        if isinstance(token, yaml.ScalarToken)
    }
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    out: list[_Scalar] = []
    seen: set[int] = set()

    def scalar(node: yaml.ScalarNode, loc: tuple[int | str, ...], is_key: bool) -> None:
        end = node.end_mark.index
        out.append(
            _Scalar(loc, starts.get(end, node.start_mark.index), end, str(node.value), node.tag, is_key)
        )

    def walk(node: yaml.Node, loc: tuple[int | str, ...]) -> None:
        if id(node) in seen:  # an alias: its node was seen where it is defined
            return
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            scalar(node, loc, False)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                if isinstance(key, yaml.ScalarNode) and id(key) not in seen:
                    seen.add(id(key))
                    scalar(key, (*loc, name), True)
                if name == _MERGE:  # a merge key's mappings hold keys of this mapping
                    walk(value, loc)
                else:
                    walk(value, (*loc, name))

    if root is not None:
        walk(root, ())
    return out


def _literal(value: str) -> bool:
    """Whether ``value`` holds a secret as such, not only references to one (``Bearer ${TOKEN}``)."""
    if REFERENCE.search(value) is None:
        return bool(value)
    return len(REFERENCE.sub("", value).strip()) >= MIN_SECRET_LENGTH


def _url_password(text: str, item: _Scalar) -> list[tuple[int, int, str, str, str | None, bool]]:
    """The password of a URL written elsewhere (``base_url: https://user:pass@host``), as
    ``GET /api/config`` masks it."""
    if "@" not in item.value:
        return []
    try:
        password = urlsplit(item.value.strip()).password
    except ValueError:
        return []
    if not password or not _literal(password):
        return []
    at = text.find(f":{password}@", item.start, item.end)
    if at < 0:  # written with escapes: not found as such, so the whole value is the secret
        token = text[item.start : item.end].rstrip()
        return [(item.start, item.start + len(token), token, item.value, key_path(item.loc), True)]
    return [(at + 1, at + 1 + len(password), password, password, key_path(item.loc), False)]


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    out: list[str] = []
    done = 0
    for start, end, replacement in sorted(edits):
        out += [text[done:start], replacement]
        done = end
    out.append(text[done:])
    return "".join(out)


def mask(text: str, secrets: Iterable[str]) -> MaskedSource:
    """``text`` with every literal secret replaced by a marker (see the module's docstring);
    ``secrets``: the configured ones (``secrets_of`` the running settings). Raises
    ``yaml.YAMLError`` when the text is not YAML (its spans cannot be known)."""
    scalars = _scalars(text)
    # (start, end, token, raw, path, whole) of each secret found, numbered in the document's order.
    found: list[tuple[int, int, str, str, str | None, bool]] = []
    for item in scalars:
        if item.is_key or item.tag == _NULL_TAG:
            continue
        if not is_secret_path(item.loc):
            found += _url_password(text, item)
            continue
        if not _literal(item.value):
            continue
        token = text[item.start : item.end].rstrip()  # a block scalar's span ends past its newline
        found.append((item.start, item.start + len(token), token, item.value, key_path(item.loc), True))
    # A block scalar's value ends with its newline: matched without it, a secret stays on its line.
    known = sorted({s.strip() for s in secrets if len(s.strip()) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    if known:
        whole = [(start, end) for start, end, *_ in found]
        for match in re.finditer("|".join(map(re.escape, known)), text):
            if any(start < match.end() and match.start() < end for start, end in whole):
                continue
            around = next((s for s in scalars if s.start <= match.start() and match.end() <= s.end), None)
            path = key_path(around.loc) if around is not None else None
            found.append((match.start(), match.end(), match.group(), match.group(), path, False))
    edits: list[tuple[int, int, str]] = []
    hidden: list[Hidden] = []
    for number, (start, end, token, raw, path, is_whole) in enumerate(sorted(found), start=1):
        name = f"__ccrouter_secret_{number}__"
        edits.append((start, end, name))
        hidden.append(Hidden(name, token, raw, path, is_whole))
    # What is left of a configured key in another form (its start, a masked copy: in a comment say)
    # is redacted for good: it cannot be put back, and must not be shown.
    masked = _apply(text, edits)
    shown = Redactor(known).text(masked)
    return MaskedSource(shown, tuple(hidden), redacted=shown != masked)


def restore(edited: str, hidden: Sequence[Hidden]) -> tuple[str, list[Problem]]:
    """``edited`` with every marker put back (the text to validate and write), and the problems
    (unknown or misplaced markers, at their key paths). Raises ``yaml.YAMLError`` when the edited
    text is not YAML."""
    if MARKER.search(edited) is None:
        return edited, []
    by_marker = {item.marker: item for item in hidden}
    scalars = _scalars(edited)
    edits: list[tuple[int, int, str]] = []
    problems: list[Problem] = []
    for item in scalars:
        found = list(MARKER.finditer(edited, item.start, item.end))
        if not found:
            continue
        path = key_path(item.loc)
        whole = not item.is_key and item.value == found[0].group() and len(found) == 1
        for match in found:
            secret = by_marker.get(match.group())
            if secret is None:
                problems.append(Problem(path, _unknown(match.group())))
            elif whole and (is_secret_path(item.loc) or secret.path == path):
                if secret.whole:  # its own scalar as written, quotes included
                    edits.append((item.start, item.end, secret.token))
                else:
                    edits.append((match.start(), match.end(), secret.raw))
            elif not secret.whole and secret.path == path:
                edits.append((match.start(), match.end(), secret.raw))
            else:
                problems.append(
                    Problem(
                        path,
                        f"{match.group()} is a masked secret: it may only stand as the whole value of a"
                        " secret key (api_key, api_keys, headers, admin_token, session_secret, store.url,"
                        " state.redis_url, alerts.webhook_url) or where it was",
                    )
                )
    spans = [(s.start, s.end) for s in scalars]
    for match in MARKER.finditer(edited):
        if any(start <= match.start() < end for start, end in spans):
            continue
        line = edited.count("\n", 0, match.start()) + 1
        secret = by_marker.get(match.group())
        if secret is None:
            problems.append(Problem(f"line {line}", _unknown(match.group()), line))
        else:  # in a comment: its text, as it was
            edits.append((match.start(), match.end(), secret.raw))
    return _apply(edited, edits), problems


def _unknown(marker: str) -> str:
    return (
        f"{marker} is not a secret of the current file: keep the markers as the editor gave them,"
        " or write the new value (or a ${VAR} reference) in its place"
    )
