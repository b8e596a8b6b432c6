"""Tool-call hygiene at the OpenAI wire boundary: names, call ids, parameter schemas, argument JSON.

OpenAI-format APIs accept tool names matching ``^[a-zA-Z0-9_-]{1,64}$`` and call ids of at most 40
characters (OpenAI answers 400 "string too long" past that); Anthropic accepts ids matching
``^[a-zA-Z0-9_-]+$``. ``ToolNames`` maps both ways for one call, so names and ids we had to change are
given back to the client unchanged. ``ArgumentStream`` forwards streamed tool arguments as they arrive
while guaranteeing the client ends with one valid JSON object. ``clean_schema`` removes the schema
keywords a vendor rejects.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from typing import Any, Protocol

import json_repair
import orjson

__all__ = ["ArgumentStream", "NameCall", "ToolNames", "WireNames", "clean_schema", "parse_arguments"]

_VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_VALID_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME = 64
_MAX_ID = 40
# One call an encoder made: (a name rather than a call id, the canonical form, the wire form answered).
NameCall = tuple[bool, str, str]


def _digest(text: str) -> str:
    return hashlib.blake2s(text.encode(), digest_size=4).hexdigest()


def _shorten(text: str, limit: int, original: str) -> str:
    """``text`` cut to ``limit`` with a stable hash of ``original`` so distinct inputs stay distinct."""
    suffix = "_" + _digest(original)
    return text[: limit - len(suffix)] + suffix


class WireNames(Protocol):
    """What an encoder asks of a ``ToolNames``: the wire form of each name and id it writes."""

    def to_wire_name(self, name: str) -> str: ...

    def to_wire_id(self, call_id: str) -> str: ...


class ToolNames:
    """Per-call maps between canonical tool names / call ids and their wire-safe forms."""

    __slots__ = ("_counter", "_id_prefix", "_ids_in", "_ids_out", "_names_in", "_names_out")

    def __init__(self, *, id_prefix: str | None = None) -> None:
        self._names_out: dict[str, str] = {}
        self._names_in: dict[str, str] = {}
        self._ids_out: dict[str, str] = {}
        self._ids_in: dict[str, str] = {}
        # Generated ids must not collide across turns of one conversation: random per call by default.
        # Drawn when first needed: most calls never make an id (a system call saved per request).
        self._id_prefix = id_prefix
        self._counter = 0

    # -- names -----------------------------------------------------------------------------------

    def to_wire_name(self, name: str) -> str:
        """The wire-safe form of a canonical tool name (the name itself when already valid)."""
        known = self._names_out.get(name)
        if known is not None:
            return known
        if _VALID_NAME.match(name) and name not in self._names_in:
            wire = name
        else:
            wire = _INVALID_CHARS.sub("_", name) or "tool"
            if len(wire) > _MAX_NAME or wire in self._names_in:
                wire = _shorten(wire, _MAX_NAME, name)
        self._names_out[name] = wire
        self._names_in[wire] = name
        return wire

    def from_wire_name(self, wire: str) -> str:
        """The canonical name for a name the provider sent (unchanged when we did not map it)."""
        return self._names_in.get(wire, wire)

    # -- call ids --------------------------------------------------------------------------------

    def to_wire_id(self, call_id: str) -> str:
        """The wire-safe form of a canonical tool-call id."""
        known = self._ids_out.get(call_id)
        if known is not None:
            return known
        wire = call_id
        if not _VALID_ID.match(call_id) or len(call_id) > _MAX_ID:
            wire = _shorten(_INVALID_CHARS.sub("_", call_id), _MAX_ID, call_id)
        self._ids_out[call_id] = wire
        self._ids_in[wire] = call_id
        return wire

    def replay(self, calls: Iterable[NameCall]) -> bool:
        """Makes recorded ``to_wire_name``/``to_wire_id`` calls again, with the same effect; False at
        the first whose answer differs from the recorded one (the calls before it are made)."""
        names_out, names_in, ids_out, ids_in = self._names_out, self._names_in, self._ids_out, self._ids_in
        for is_name, canonical, wire in calls:
            if not is_name:
                # An id's wire form depends on the id alone: no need to compute it again.
                known = ids_out.get(canonical)
                if known is None:
                    ids_out[canonical] = wire
                    ids_in[wire] = canonical
                elif known != wire:
                    return False
                continue
            known = names_out.get(canonical)
            if known is None:
                # Only a valid name is ever answered unchanged; it still is when no wire name took it.
                if wire == canonical and canonical not in names_in:
                    names_out[canonical] = names_in[canonical] = canonical
                    continue
                known = self.to_wire_name(canonical)
            if known != wire:
                return False
        return True

    def fresh_id(self, kind: str) -> str:
        """A new id (``<kind>_<random prefix><n>``) for something the provider left unnamed."""
        self._counter += 1
        if self._id_prefix is None:
            self._id_prefix = secrets.token_hex(6)
        return f"{kind}_{self._id_prefix}{self._counter}"

    def from_wire_id(self, wire: str | None) -> str:
        """The canonical id for an id the provider sent; a fresh one when it sent none (Ollama)."""
        if not wire:
            return self.fresh_id("call")
        known = self._ids_in.get(wire)
        if known is not None:
            return known
        if _VALID_ID.match(wire):
            return wire
        canonical = _INVALID_CHARS.sub("_", wire) + "_" + _digest(wire)
        self._ids_in[wire] = canonical
        return canonical


# Keywords whose value maps names to schemas: the names are not keywords and are never stripped.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def clean_schema(node: Any, keys: frozenset[str]) -> Any:
    """``node`` without the keywords ``keys``; also drops ``required`` where ``properties`` is missing
    (Groq: "'required' present but 'properties' is missing"). Unchanged sub-schemas are shared."""
    if isinstance(node, list):
        items = [clean_schema(item, keys) for item in node]
        return node if all(new is old for new, old in zip(items, node, strict=True)) else items
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    changed = False
    for key, value in node.items():
        if key in keys:
            changed = True
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            new = {name: clean_schema(sub, keys) for name, sub in value.items()}
            if all(new[name] is sub for name, sub in value.items()):
                new = value
        else:
            new = clean_schema(value, keys)
        changed = changed or new is not value
        out[key] = new
    if "required" in out and "properties" not in out:
        del out["required"]
        changed = True
    return out if changed else node


def parse_arguments(arguments: object) -> dict[str, object]:
    """Tool-call arguments as an object: strict JSON first, then json_repair; never raises.

    Some providers send an object instead of a string (Ollama), or a JSON string holding JSON
    (double encoded); anything that is not an object in the end becomes ``{}``.
    """
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = json_repair.loads(arguments)
    if isinstance(value, str) and value.strip().startswith("{"):
        return parse_arguments(value)
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- streamed arguments

# Parser states for the JSON being forwarded.
_START, _KEY_OR_END, _KEY, _COLON, _VALUE, _VALUE_OR_END, _AFTER_VALUE, _DONE = range(8)
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]*')
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = ("true", "false", "null")
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_HEX = frozenset("0123456789abcdefABCDEF")
_WHITESPACE = frozenset(" \t\r\n")


def _complete_scalar(token: str) -> str:
    """What to append to a partial number or literal to make it complete."""
    for literal in _LITERALS:
        if literal.startswith(token):
            return literal[len(token) :]
    return "0" if token[-1] in "-+.eE" else ""


def _viable_scalar(token: str) -> bool:
    if any(literal.startswith(token) for literal in _LITERALS):
        return True
    return _NUMBER.fullmatch(token + _complete_scalar(token)) is not None


class ArgumentStream:
    """Forwards a tool call's streamed ``arguments`` text so that what was forwarded plus ``close()``
    is always one valid JSON object.

    Strategy (the client must end with valid JSON, and what was sent cannot be taken back):

    - Fragments are forwarded as soon as they arrive, checked by an incremental JSON parser so the
      forwarded text is always a prefix of some valid JSON object. Whitespace outside strings is
      dropped, and a comma is held until the next token shows it is not a trailing comma.
    - Local slips are repaired on the fly: raw control characters inside strings are escaped,
      an invalid escape (``C:\\dir``) becomes a literal backslash, trailing commas are dropped, and
      anything after the top-level object ends is ignored.
    - At the first unrecoverable character, forwarding stops; ``close()`` then completes the
      forwarded prefix (closes the string, completes a number or literal, adds ``null`` for a missing
      value, closes open containers). Truncation (``max_tokens``) is fully preserved this way.
    - If nothing was forwarded yet (the text did not start with ``{``: double-encoded JSON, Python
      literals...), ``close()`` returns the whole text repaired by json_repair, or ``{}``.
    """

    __slots__ = (
        "_broken",
        "_escape",
        "_hex",
        "_high_surrogate",
        "_in_string",
        "_is_key",
        "_pending_comma",
        "_pending_open",
        "_raw",
        "_scalar",
        "_stack",
        "_state",
    )

    def __init__(self) -> None:
        self._raw: list[str] = []
        self._stack: list[str] = []
        self._state = _START
        self._broken = False
        self._in_string = False
        self._is_key = False
        self._escape = False
        self._hex: str | None = None  # digits of a \\u escape being read
        self._high_surrogate = False  # the last string content was a \\uD800-\\uDBFF escape
        self._scalar = ""
        self._pending_comma = False
        # The opening brace is held until a key or "}" follows, so that text that is not JSON from
        # its first token ({'a': True}) is left whole to json_repair.
        self._pending_open = False

    @property
    def started(self) -> bool:
        """True once some text was forwarded."""
        return (bool(self._stack) and not self._pending_open) or self._state == _DONE

    def feed(self, fragment: str) -> str:
        """The part of ``fragment`` to forward now (possibly repaired, possibly empty)."""
        if not self.started:
            self._raw.append(fragment)  # only needed if the object never starts (see close)
        if self._broken or self._state == _DONE:
            return ""
        out: list[str] = []
        pos, end = 0, len(fragment)
        while pos < end and not self._broken and self._state != _DONE:
            if self._in_string:
                pos = self._string_step(fragment, pos, out)
            else:
                self._token_step(fragment[pos], out)
                pos += 1
        return "".join(out)

    def close(self) -> str:
        """The text that completes what was forwarded into one valid JSON object."""
        if not self.started:
            value = parse_arguments("".join(self._raw))
            try:
                return orjson.dumps(value).decode()
            except TypeError:  # repaired text holding lone surrogates, which orjson refuses
                return json.dumps(value, ensure_ascii=False).encode("utf-8", "replace").decode()
        tail: list[str] = []
        if self._in_string:
            if self._hex is not None:
                tail.append(self._hex_tail())
            if self._high_surrogate:  # a lone high surrogate is rejected by strict parsers
                tail.append("\\udc00")
            tail.append('"')
            self._in_string = False
            self._after_string()
        elif self._scalar:
            tail.append(_complete_scalar(self._scalar))
            self._scalar = ""
            self._state = _AFTER_VALUE
        elif self._pending_comma:  # never forwarded: the value before it ends the container
            self._pending_comma = False
            self._state = _AFTER_VALUE
        if self._state == _COLON:
            tail.append(":null")
        elif self._state == _VALUE:
            tail.append("null")
        tail.extend("}" if opener == "{" else "]" for opener in reversed(self._stack))
        self._stack.clear()
        self._state = _DONE
        return "".join(tail)

    # -- inside strings --------------------------------------------------------------------------

    def _hex_tail(self) -> str:
        """Completes a partial \\u escape; after a high surrogate, into its low pair if possible."""
        assert self._hex is not None
        digits, self._hex = self._hex, None
        low, high = int(digits.ljust(4, "0"), 16), int(digits.ljust(4, "f"), 16)
        value = low
        if self._high_surrogate and max(low, 0xDC00) <= min(high, 0xDFFF):
            value = max(low, 0xDC00)
        self._high_surrogate = 0xD800 <= value <= 0xDBFF
        return f"{value:04x}"[len(digits) :]

    def _string_step(self, text: str, pos: int, out: list[str]) -> int:
        if self._hex is not None:
            char = text[pos]
            if char not in _HEX:
                self._broken = True
                return pos
            out.append(char)
            self._hex += char
            if len(self._hex) == 4:
                self._hex_tail()
            return pos + 1
        if self._escape:
            self._escape = False
            char = text[pos]
            if char != "u":
                self._high_surrogate = False
            if char in _SIMPLE_ESCAPES:
                out.append("\\" + char)
            elif char == "u":
                out.append("\\u")
                self._hex = ""
            else:  # not a JSON escape: the model meant a literal backslash
                out.append("\\\\")
                return pos  # reprocess the char as ordinary string content
            return pos + 1
        run = _STRING_RUN.match(text, pos)
        assert run is not None  # the pattern matches the empty string
        if run.end() > pos:
            out.append(run.group())
            pos = run.end()
            self._high_surrogate = False
        if pos == len(text):
            return pos
        char = text[pos]
        if char == '"':
            out.append('"')
            self._in_string = False
            self._after_string()
        elif char == "\\":
            self._escape = True  # held until the next char shows whether the escape is valid
        else:  # a raw control character: JSON requires it escaped
            out.append(orjson.dumps(char).decode()[1:-1])
        return pos + 1

    def _after_string(self) -> None:
        self._state = _COLON if self._is_key else _AFTER_VALUE

    # -- outside strings -------------------------------------------------------------------------

    def _token_step(self, char: str, out: list[str]) -> None:
        if self._scalar:
            if _viable_scalar(self._scalar + char):
                self._scalar += char
                out.append(char)
                return
            if _complete_scalar(self._scalar):  # "1." or "tru" followed by something else
                self._broken = True
                return
            self._scalar = ""
            self._state = _AFTER_VALUE
        if char in _WHITESPACE:
            return
        state = self._state
        if state == _START:
            if char == "{":
                self._stack.append("{")
                self._state = _KEY_OR_END
                self._pending_open = True
            else:
                self._broken = True
        elif state in (_KEY_OR_END, _KEY):
            self._key_step(char, out)
        elif state == _COLON:
            if char == ":":
                out.append(":")
                self._state = _VALUE
            else:
                self._broken = True
        elif state in (_VALUE, _VALUE_OR_END):
            self._value_step(char, out)
        elif state == _AFTER_VALUE:
            self._after_value_step(char, out)

    def _open(self, opener: str, out: list[str]) -> None:
        self._flush_comma(out)
        out.append(opener)
        self._stack.append(opener)
        self._state = _KEY_OR_END if opener == "{" else _VALUE_OR_END

    def _flush_comma(self, out: list[str]) -> None:
        if self._pending_comma:
            out.append(",")
            self._pending_comma = False

    def _key_step(self, char: str, out: list[str]) -> None:
        if self._pending_open and char in '"}':
            out.append("{")
            self._pending_open = False
        if char == '"':
            self._flush_comma(out)
            out.append('"')
            self._in_string, self._is_key = True, True
        elif char == "}":
            self._close_container("}", out)
        else:
            self._broken = True

    def _value_step(self, char: str, out: list[str]) -> None:
        if char in "{[":
            self._open(char, out)
        elif char == '"':
            self._flush_comma(out)
            out.append('"')
            self._in_string, self._is_key = True, False
        elif char == "]" and (self._state == _VALUE_OR_END or self._pending_comma):
            self._close_container("]", out)
        elif _viable_scalar(char):
            self._flush_comma(out)
            out.append(char)
            self._scalar = char
        else:
            self._broken = True

    def _after_value_step(self, char: str, out: list[str]) -> None:
        if char == ",":
            self._pending_comma = True
            self._state = _KEY if self._stack[-1] == "{" else _VALUE
        elif char in "}]":
            self._close_container(char, out)
        else:
            self._broken = True

    def _close_container(self, closer: str, out: list[str]) -> None:
        if (closer == "}") != (self._stack[-1] == "{"):
            self._broken = True
            return
        self._pending_comma = False  # a trailing comma: dropped
        self._stack.pop()
        out.append(closer)
        self._state = _AFTER_VALUE if self._stack else _DONE
