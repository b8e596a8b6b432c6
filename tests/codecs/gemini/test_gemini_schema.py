"""JSON Schema -> Gemini's OpenAPI subset (the whole Claude Code tool set is in the encode goldens)."""

from __future__ import annotations

from typing import Any

import pytest

from ccrouter.codecs.gemini.schema import clean_parameters, clean_schema

# Every key Gemini's Schema object accepts (https://ai.google.dev/api/caching#Schema).
GEMINI_KEYS = {
    "type", "format", "description", "nullable", "enum", "items", "minItems", "maxItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "minimum",
    "maximum", "default", "example", "anyOf", "propertyOrdering",
}  # fmt: skip


def _walk(schema: dict[str, Any]) -> None:
    """Fail on any key Gemini would reject, at any depth."""
    assert set(schema) <= GEMINI_KEYS, set(schema) - GEMINI_KEYS
    for sub in (schema.get("properties") or {}).values():
        _walk(sub)
    if "items" in schema:
        _walk(schema["items"])
    for branch in schema.get("anyOf") or []:
        _walk(branch)
    if "properties" in schema:
        assert schema["type"] == "object"
        assert set(schema.get("required", [])) <= set(schema["properties"])
    if "enum" in schema:
        assert schema["type"] == "string"
        assert all(isinstance(v, str) for v in schema["enum"])


def test_unchanged_leaves_are_reused_not_copied() -> None:
    leaf = {"type": "string", "description": "The command", "minLength": 1}
    cleaned = clean_schema({"type": "object", "properties": {"command": leaf}, "additionalProperties": False})
    assert cleaned["properties"]["command"] is leaf


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": ["integer", "null"], "minimum": 1}, {"type": "integer", "minimum": 1, "nullable": True}),
        (
            {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
            {"type": "string", "nullable": True},
        ),
        ({"const": 3}, {"type": "integer", "description": "Allowed values: 3"}),
        (
            {"enum": [1, 2.5], "description": "Scale"},
            {"type": "number", "description": "Scale\nAllowed values: 1, 2.5"},
        ),
        ({"enum": [1, "a"]}, {"description": 'Allowed values: 1, "a"'}),
        ({"type": "string", "enum": ["a", None]}, {"type": "string", "enum": ["a"], "nullable": True}),
        (
            {"type": "number", "exclusiveMaximum": 5, "format": "double"},
            {"type": "number", "format": "double"},
        ),
        ({"type": "array", "items": [{"type": "integer"}]}, {"type": "array", "items": {"type": "integer"}}),
        ({"type": "object", "propertyNames": {"pattern": "^a"}, "patternProperties": {}}, {"type": "object"}),
        ({"type": "string", "properties": {"x": {"type": "string"}}}, {"type": "string"}),
        (
            {"anyOf": [{"const": "a"}, {"enum": ["b", "c"]}, {"type": "null"}]},
            {"type": "string", "enum": ["a", "b", "c"], "nullable": True},
        ),
    ],
)
def test_translations(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert clean_schema(schema) == expected


def test_recursive_ref_is_cut() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/definitions/Node"}},
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/definitions/Node"}, "v": {"type": "string"}},
            }
        },
    }
    cleaned = clean_schema(schema)
    node = cleaned["properties"]["node"]
    assert node["properties"]["child"] == {"type": "object"}
    assert node["properties"]["v"] == {"type": "string"}
    _walk(cleaned)


def test_unknown_ref_and_non_dict_nodes_degrade() -> None:
    cleaned = clean_schema(
        {
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/Missing"}, "b": True},
            "required": ["a", "b"],
        }
    )
    assert cleaned == {
        "type": "object",
        "properties": {"a": {"type": "object"}, "b": {}},
        "required": ["a", "b"],
    }


def test_deep_nesting_is_bounded() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"x": schema}}
    _walk(clean_schema(schema))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {}},
        {"type": "object", "additionalProperties": True},
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
    ],
)
def test_no_properties_means_no_parameters(schema: dict[str, Any]) -> None:
    assert clean_parameters(schema) is None


def test_claude_code_like_schema_is_fully_cleaned() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "minItems": 1,
                "maxItems": 4,
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string"},
                        "multiSelect": {"type": "boolean", "default": False},
                        "options": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "label": {"type": "string"},
                                    "description": {"type": "string"},
                                },
                                "required": ["label", "description"],
                                "additionalProperties": False,
                            },
                        },
                    },
                    "required": ["question", "options", "multiSelect"],
                    "additionalProperties": False,
                },
            },
            "answers": {"type": "object", "additionalProperties": {"type": "string"}},
            "timeout": {"type": "integer", "exclusiveMinimum": 0, "maximum": 600000},
        },
        "required": ["questions"],
        "additionalProperties": False,
    }
    cleaned = clean_parameters(schema)
    assert cleaned is not None
    _walk(cleaned)
    options = cleaned["properties"]["questions"]["items"]["properties"]["options"]
    assert options["items"]["required"] == ["label", "description"]
    assert cleaned["properties"]["timeout"] == {"type": "integer", "maximum": 600000}
