"""JSON Schema (Claude Code sends draft 2020-12) -> the OpenAPI 3.0 subset Gemini accepts in
``FunctionDeclaration.parameters``.

Gemini's ``Schema`` object (https://ai.google.dev/api/caching#Schema) knows: type, format, description,
nullable, enum, items, minItems, maxItems, properties, required, minProperties, maxProperties,
minLength, maxLength, pattern, minimum, maximum, default, example, anyOf, propertyOrdering. Anything
else is rejected with "Unknown name ... Cannot find field" (``$schema``, ``additionalProperties``,
``$ref``, ``const``, ``exclusiveMinimum``...), so we translate what has an equivalent and drop the rest:

- ``$ref`` is inlined from ``$defs`` / ``definitions`` (a recursive reference becomes a bare object);
- ``const`` becomes a one-value ``enum``; ``enum`` is only allowed on strings, so a non-string enum is
  dropped and its values are listed in the description instead;
- ``anyOf`` / ``oneOf`` with a ``null`` branch (and ``type: [x, "null"]``) become ``nullable``; a single
  remaining branch is merged into its parent; ``allOf`` branches are merged;
- ``format`` is kept only where Gemini gives it a meaning (``enum`` / ``date-time`` on strings, the
  numeric widths), since other values are rejected on some models;
- ``properties`` / ``required`` only on objects, ``required`` only naming declared properties, and an
  array always has ``items`` ("items: missing field" otherwise);
- an object without properties is rejected at the top level ("properties: should be non-empty for
  OBJECT type"): ``clean_parameters`` returns None so the declaration omits ``parameters``; nested
  free-form maps (``additionalProperties: {...}``) stay bare objects, Gemini has nothing closer.

Leaves that need no change are returned as the same dict (no copy on the hot path).

``json_schema_from_gemini`` goes the other way, for Gemini clients' ``parameters`` (the front,
``gemini.front``): upper-case types (``OBJECT``, as the SDKs write them) become JSON Schema's, and
``nullable`` a ``null`` in the type; every other key is kept (JSON Schema ignores the few it lacks).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["clean_parameters", "clean_schema", "json_schema_from_gemini"]

JSON = dict[str, Any]

# Kept as they are when present.
_PLAIN_KEYS = frozenset(
    {
        "description",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
        "propertyOrdering",
    }
)
_LEAF_TYPES = frozenset({"string", "number", "integer", "boolean"})
# A leaf made only of these keys is already valid for Gemini and is reused as is.
_LEAF_KEYS = _PLAIN_KEYS | {"type", "nullable"}
_FORMATS: dict[str, frozenset[str]] = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
# The JSON Schema type of a const / enum value (bool before int: it is a subclass).
_VALUE_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}
_CONST_KEYS = frozenset({"const", "enum", "type", "description", "title"})
# Deeper than any real tool schema; stops pathological or self-including inputs.
_MAX_DEPTH = 40


def clean_parameters(schema: JSON) -> JSON | None:
    """A tool's ``input_schema`` as Gemini ``parameters``, or None when it declares no properties."""
    cleaned = clean_schema(schema)
    if not cleaned.get("properties"):
        return None
    return cleaned


def clean_schema(schema: JSON) -> JSON:
    """One JSON Schema cleaned to Gemini's subset (see the module docstring)."""
    return _Cleaner(schema).clean(schema, 0)


def _is_null(branch: Any) -> bool:
    return isinstance(branch, dict) and branch.get("type") == "null" and len(branch) <= 2


def _is_plain_leaf(node: JSON) -> bool:
    kind = node.get("type")
    return isinstance(kind, str) and kind in _LEAF_TYPES and _LEAF_KEYS.issuperset(node)


class _Cleaner:
    __slots__ = ("_defs", "_expanding")

    def __init__(self, root: JSON) -> None:
        defs = root.get("$defs") or root.get("definitions")
        self._defs: JSON = defs if isinstance(defs, dict) else {}
        self._expanding: set[str] = set()

    def clean(self, node: Any, depth: int) -> JSON:
        if not isinstance(node, dict) or depth > _MAX_DEPTH:
            return {}
        if _is_plain_leaf(node):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._ref(node, ref, depth)
        all_of = node.get("allOf")
        if isinstance(all_of, list) and all_of:
            node = _merge_all_of(node, all_of)
        out: JSON = {}
        kind, nullable = _type_of(node)
        if kind is None:
            kind = _infer_type(node)
        branches = node.get("anyOf") or node.get("oneOf")
        if isinstance(branches, list):
            kept = [branch for branch in branches if not _is_null(branch)]
            nullable = nullable or len(kept) < len(branches)
            consts = _string_constants(kept)
            if consts is not None:
                kind = "string"
                out["enum"] = consts
            elif len(kept) == 1:
                out.update(self.clean(kept[0], depth + 1))
            elif kept:
                out["anyOf"] = [self.clean(branch, depth + 1) for branch in kept]
        if kind is not None:
            out["type"] = kind
        for key, value in node.items():  # in input order: stable bytes keep Gemini's prefix cache warm
            if key in _PLAIN_KEYS:
                out[key] = value
        if kind == "object":
            self._object(node, out, depth)
        elif kind == "array" and ("items" in node or "items" not in out):
            items = node.get("items")
            if isinstance(items, list):  # draft-4 tuple form: Gemini has no tuples
                items = items[0] if items else None
            out["items"] = self.clean(items, depth + 1) if isinstance(items, dict) else {"type": "string"}
        fmt = node.get("format")
        if isinstance(fmt, str) and kind is not None and fmt in _FORMATS.get(kind, ()):
            out["format"] = fmt
        nullable = _enum(node, out) or nullable
        if nullable or node.get("nullable") is True:
            out["nullable"] = True
        return out

    def _object(self, node: JSON, out: JSON, depth: int) -> None:
        props = node.get("properties")
        if not isinstance(props, dict) or not props:
            return  # a free-form map: Gemini cannot declare one, a bare object is the closest it takes
        cleaned = {name: self.clean(sub, depth + 1) for name, sub in props.items()}
        out["properties"] = cleaned
        required = node.get("required")
        if isinstance(required, list):
            names = [name for name in required if isinstance(name, str) and name in cleaned]
            if names:
                out["required"] = names

    def _ref(self, node: JSON, ref: str, depth: int) -> JSON:
        name = ref.rpartition("/")[2]
        target = self._defs.get(name)
        if not isinstance(target, dict) or name in self._expanding:
            # Unknown or recursive reference: Gemini cannot express it; an object is the least wrong.
            out: JSON = {"type": "object"}
        else:
            self._expanding.add(name)
            out = dict(self.clean(target, depth + 1))
            self._expanding.discard(name)
        description = node.get("description")
        if isinstance(description, str):
            out["description"] = description
        return out


def _string_constants(branches: list[Any]) -> list[str] | None:
    """``anyOf: [{const: "a"}, {const: "b"}]`` (how zod writes a string union) as one string enum."""
    values: list[str] = []
    for branch in branches:
        if not isinstance(branch, dict) or not _CONST_KEYS.issuperset(branch):
            return None
        if isinstance(branch.get("const"), str):
            values.append(branch["const"])
        elif isinstance(branch.get("enum"), list) and all(isinstance(v, str) for v in branch["enum"]):
            values.extend(branch["enum"])
        else:
            return None
    return values if len(values) > 1 else None


def _type_of(node: JSON) -> tuple[str | None, bool]:
    """The single type and whether null is allowed (``type: ["string", "null"]``)."""
    kind = node.get("type")
    if isinstance(kind, list):
        others = [item for item in kind if isinstance(item, str) and item != "null"]
        return (others[0] if others else None), len(others) < len(kind)
    if kind == "null":
        return None, True
    return (kind if isinstance(kind, str) else None), False


def _infer_type(node: JSON) -> str | None:
    if "properties" in node:
        return "object"
    if "items" in node:
        return "array"
    values = node["enum"] if "enum" in node else [node["const"]] if "const" in node else None
    if not isinstance(values, list):
        return None
    kinds = {_VALUE_TYPES.get(type(value)) for value in values if value is not None}
    if kinds == {"integer", "number"}:
        return "number"
    return kinds.pop() if len(kinds) == 1 else None


def _enum(node: JSON, out: JSON) -> bool:
    """Set ``enum`` (strings only, per Gemini); returns True when the values allowed null."""
    if "enum" in node:
        values = node["enum"]
    elif "const" in node:
        values = [node["const"]]
    else:
        return False
    if not isinstance(values, list):
        return False
    strings = [value for value in values if value is not None]
    allows_null = len(strings) < len(values)
    if strings and all(isinstance(value, str) for value in strings) and out.get("type") == "string":
        out["enum"] = values if not allows_null else strings
        return allows_null
    # Gemini rejects enum on non-string types; keep the constraint as prose for the model.
    hint = "Allowed values: " + ", ".join(orjson.dumps(value).decode() for value in values)
    description = out.get("description")
    out["description"] = f"{description}\n{hint}" if isinstance(description, str) and description else hint
    return allows_null


def _merge_all_of(node: JSON, branches: list[Any]) -> JSON:
    """``allOf`` folded into one schema: properties and required united, other keys first wins."""
    merged: JSON = {key: value for key, value in node.items() if key != "allOf"}
    properties: JSON = dict(merged.get("properties") or {})
    required: list[Any] = list(merged.get("required") or [])
    for branch in branches:
        if not isinstance(branch, dict):
            continue
        for key, value in branch.items():
            if key == "properties" and isinstance(value, dict):
                properties.update(value)
            elif key == "required" and isinstance(value, list):
                required.extend(name for name in value if name not in required)
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


# Keys whose value is one subschema, a list of them, or a map of them.
_SUBSCHEMA = frozenset({"items", "additionalProperties"})
_SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SUBSCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})


def json_schema_from_gemini(schema: JSON, depth: int = 0) -> JSON:
    """A Gemini ``Schema`` (OpenAPI 3.0 subset) as JSON Schema (see the module docstring)."""
    if depth > _MAX_DEPTH:
        return {}
    out: JSON = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower() if value != "TYPE_UNSPECIFIED" else None
        elif key in _SUBSCHEMA and isinstance(value, dict):
            out[key] = json_schema_from_gemini(value, depth + 1)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [json_schema_from_gemini(v, depth + 1) if isinstance(v, dict) else v for v in value]
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {
                name: json_schema_from_gemini(v, depth + 1) if isinstance(v, dict) else v
                for name, v in value.items()
            }
        elif key != "nullable":
            out[key] = value
    if out.get("type") is None:
        out.pop("type", None)
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out
