"""Masking the config file's text and putting its secrets back (``ccrouter.config_source``), and the
problems a check names (``ccrouter.config_check``)."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, SecretStr

from ccrouter.config import Settings
from ccrouter.config_check import MAX_NODES, check_text
from ccrouter.config_source import is_secret_path, mask, restore
from ccrouter.plugins import Registry, load_plugins

TEXT = """\
# rotated from sk-ant-api03-oldoldold-0001 (kept here on purpose): sk-live-secret-0001
server:
  admin_token: 'adm-secret-token-0001'
  api_keys: [plain-client-key-0001, {name: a, key: "obj-client-key-0001"}]
providers:
  - &base
    name: alpha
    type: anthropic
    api_key: &key sk-live-secret-0001
    headers: {x-org: org-secret-0001, x-env: "${ORG_HEADER}", authorization: "Bearer ${TOKEN}"}
    models: [m]
  - <<: *base
    name: beta
    api_key: *key
    api_keys:
      - |-
        multi-line-secret-0001
router: {default: "alpha,m"}
"""


def _fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The key paths of every ``SecretStr`` field (through lists, dicts and unions)."""
    out: list[tuple[Any, ...]] = []

    def visit(annotation: Any, at: tuple[Any, ...]) -> None:
        if annotation is SecretStr:
            out.append(at)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(_fields(annotation, at))
        elif get_origin(annotation) is list:
            visit(get_args(annotation)[0], (*at, 0))
        elif get_origin(annotation) is dict:
            visit(get_args(annotation)[1], (*at, "name"))
        elif get_origin(annotation) in (Union, types.UnionType):
            for arg in get_args(annotation):
                visit(arg, at)

    for name, field in model.model_fields.items():
        visit(field.annotation, (*loc, name))
    return out


def test_secret_paths_cover_every_secret_field() -> None:
    paths = _fields(Settings, ())
    assert ("providers", 0, "api_key") in paths
    missing = [path for path in paths if not is_secret_path(path)]
    assert missing == []
    assert is_secret_path(("providers", 3, "headers", "x-anything"))
    assert not is_secret_path(("providers", 0, "name"))
    assert not is_secret_path(("providers", 0, "headers"))


def test_masking_hides_every_literal_secret_and_puts_each_back() -> None:
    masked = mask(TEXT, {"sk-live-secret-0001"})
    for secret in (
        "sk-live-secret-0001",
        "adm-secret",
        "plain-client",
        "obj-client",
        "org-secret",
        "multi-line",
    ):
        assert secret not in masked.text
    # A start of the configured key left in a comment is redacted for good (it cannot be put back).
    assert "sk-ant-api03-oldoldold" in masked.text  # not a start of a configured key: kept
    # References, anchors, aliases and merge keys stay as written.
    assert 'x-env: "${ORG_HEADER}"' in masked.text
    assert 'authorization: "Bearer ${TOKEN}"' in masked.text
    assert "api_key: &key __ccrouter_secret_" in masked.text
    assert "api_key: *key" in masked.text
    back, problems = restore(masked.text, masked.hidden)
    assert problems == []
    assert back == TEXT


def test_a_marker_moved_or_invented_is_a_problem_at_its_key_path() -> None:
    masked = mask(TEXT, set())
    first = masked.hidden[0].marker
    moved = masked.text.replace("name: alpha", f"name: {first}").replace(
        "name: beta", "name: __ccrouter_secret_99__"
    )
    _, problems = restore(moved, masked.hidden)
    assert [(p.path, "masked secret" in p.message) for p in problems] == [
        ("providers[0].name", True),
        ("providers[1].name", False),
    ]
    _, problems = restore(masked.text + "# __ccrouter_secret_42__\n", masked.hidden)
    assert [(p.path, p.line) for p in problems] == [("line 18", 18)]
    # A marker may go to another secret key (the same key for a second provider).
    reused = masked.text.replace("api_key: *key", f"api_key: {first}")
    back, problems = restore(reused, masked.hidden)
    assert problems == []
    assert "api_key: 'adm-secret-token-0001'" in back


def _check(text: str) -> list[tuple[str, str]]:
    running = Settings.model_validate(
        {"providers": [{"name": "s", "type": "simulated"}], "router": {"default": "s,m"}}
    )
    registry = Registry.build(load_plugins([]))
    checked = check_text(text, running=running, registry=registry, base_dir=Path("."), source="config.yaml")
    return [(p.path, p.message) for p in checked.problems]


def test_the_check_names_every_problem_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_SECRET_VALUE", "resolved-secret-value-0001")
    text = """\
server: {port: 99999, log_level: "${CHECK_SECRET_VALUE}"}
providers: [{name: s, type: simulated, models: [m]}]
router: {default: "s,m", think: "t,m"}
"""
    problems = _check(text)
    assert [path for path, _ in problems] == ["server.port", "server.log_level"]
    assert "[redacted]" in problems[1][1]
    assert "resolved-secret-value-0001" not in repr(problems)
    assert _check("providers: [{name: s, type: simulated}]\nrouter: {default: 'x,m'}\n") == [
        ("router.default", "unknown provider 'x' (have ['s'])")
    ]


def test_an_alias_bomb_is_refused_before_it_is_built() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    problems = _check("\n".join(lines) + "\n")
    assert problems == [("(top level)", f"the document expands past {MAX_NODES} nodes through its aliases")]


def test_what_cannot_be_put_back_is_redacted_and_said() -> None:
    text = "# the old one began sk-live-secret-99\n" + TEXT
    masked = mask(text, {"sk-live-secret-0001"})
    assert masked.redacted
    assert "# the old one began [redacted]\n" in masked.text
    assert not mask(TEXT, {"sk-live-secret-0001"}).redacted


def test_a_password_in_a_url_is_masked_where_it_stands() -> None:
    url = "https://me:pw-1234@proxy.example/v1"
    text = f'providers:\n  - {{name: p, type: openai, base_url: "{url}", models: [m]}}\n'
    masked = mask(text, set())
    assert "pw-1234" not in masked.text
    assert 'base_url: "https://me:__ccrouter_secret_1__@proxy.example/v1"' in masked.text
    assert restore(masked.text, masked.hidden) == (text, [])
    # Moved elsewhere, the password is refused (it is no whole value of a secret key there).
    moved = masked.text.replace("name: p", "name: __ccrouter_secret_1__")
    assert [p.path for p in restore(moved, masked.hidden)[1]] == ["providers[0].name"]
