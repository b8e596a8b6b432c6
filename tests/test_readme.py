"""Every ```yaml block of README.md parses and passes the real loader.

The rule, for any block (including ones added later):
1. It is valid YAML whose top level is a mapping, and every top-level key is a ``Settings`` section.
2. Every ``${VAR}`` / ``$VAR`` it uses is set to a dummy value, and interpolation runs as at load time.
3. Its top-level sections replace those of a minimal valid configuration (one simulated provider, a
   default route to it), so a fragment (``logging:`` alone) becomes a whole file; a block with its own
   ``providers`` and ``router`` keeps them. A provider that the block's routes name but that it does not
   define (an example shows only the part it explains) is added as a model-less simulated provider.
   The result is validated by ``settings_from_data``, as a file would be, except that the plugins
   and custom router a block names (the reader's own code) are not imported.
4. A block that is another program's YAML (a Prometheus rule, a compose file) says so on its first line,
   ``# file: prometheus.yml``; it must still parse (rule 1's first half), and is not validated further.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccrouter.config import Settings
from ccrouter.config_file import settings_from_data, write_default_config
from ccrouter.errors import ConfigError
from ccrouter.projects import ProjectFile

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_OTHER_FILE = re.compile(r"\A# file: (?!config\.yaml\b)\S+")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_ROUTE_FIELDS = (
    "default",
    "background",
    "think",
    "long_context",
    "web_search",
    "image",
    "subagent",
    "image_agent",
)
_BASE: dict[str, Any] = {
    "providers": [{"name": "simulated", "type": "simulated", "models": ["sim-1"]}],
    "router": {"default": "simulated,sim-1"},
}


def yaml_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, body) for every ```yaml block."""
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in _BLOCK.finditer(text)]


def dummy_environ(block: str) -> dict[str, str]:
    # 8+ characters: like a real secret, long enough for the redaction that other code applies.
    names = {a or b for a, b in _VAR.findall(block.replace("$$", ""))}
    return {name: f"dummy-{name.lower()}-value" for name in names}


def _routes(router: dict[str, Any]) -> list[str]:
    routes = [router[field] for field in _ROUTE_FIELDS if isinstance(router.get(field), str)]
    for fallback in (router.get("fallback") or {}).values():
        routes += [route for route in fallback if isinstance(route, str)]
    return routes


def as_whole_config(data: dict[str, Any]) -> dict[str, Any]:
    """The block's sections over the minimal configuration, with the providers it names (rule 3)."""
    merged = {**_BASE, **data}
    providers = list(merged["providers"])
    defined = {provider.get("name") for provider in providers if isinstance(provider, dict)}
    router = merged["router"] if isinstance(merged["router"], dict) else {}
    profile_routes = [
        route
        for profile in (merged.get("profiles") or {}).values()
        if isinstance(profile, dict) and isinstance(profile.get("router"), dict)
        for route in _routes(profile["router"])
    ]
    for route in [*_routes(router), *profile_routes]:
        name = route.split(",")[0].strip()
        if name not in defined:
            providers.append({"name": name, "type": "simulated"})
            defined.add(name)
    merged["providers"] = providers
    return merged


BLOCKS = yaml_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_yaml_examples() -> None:
    # Guards the extraction itself: a changed fence style must not make the test below vacuous.
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("line", "block"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_yaml_block_is_a_valid_configuration(line: int, block: str) -> None:
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        pytest.fail(f"README.md:{line}: not valid YAML: {exc}")
    if block.startswith("# file: .ccrouter.yaml"):
        ProjectFile.model_validate(data)  # a project file: checked as `ccrouter code` reads it
        return
    if _OTHER_FILE.match(block):
        return  # rule 4: another program's file, which parsed
    assert isinstance(data, dict), f"README.md:{line}: the top level must be a mapping"
    unknown = set(data) - set(Settings.model_fields)
    assert not unknown, f"README.md:{line}: not configuration sections: {sorted(unknown)}"
    # The shape only: an example's plugins and custom router are the reader's code, not shipped here
    # (tests/integration/test_plugin_routing.py and test_plugin_hooks.py run real ones).
    settings_from_data(
        as_whole_config(data), dummy_environ(block), source=f"README.md:{line}", run_plugins=False
    )


def test_fragment_rule_still_catches_a_wrong_value() -> None:
    # The merge must not hide mistakes: a bad value inside a fragment still fails validation.
    # (Not routing.strategy: any name a plugin registers is valid there, checked when serving.)
    block = "routing:\n  auto_fallback: sometimes\n"
    with pytest.raises(ConfigError, match=r"routing\.auto_fallback"):
        settings_from_data(as_whole_config(yaml.safe_load(block)), {})


def test_generated_config_hints_are_valid(tmp_path: Path) -> None:
    """The commented examples in the file written on first start work once uncommented."""
    path = tmp_path / "config.yaml"
    write_default_config(path, {}, ollama_probe=lambda: False)
    text = path.read_text(encoding="utf-8")
    environ = {"CCROUTER_API_KEY": "dummy-client-key", "DEEPSEEK_API_KEY": "dummy-deepseek-key"}
    assert "#   api_keys:" in text
    uncommented = text.replace("#   api_keys:", "  api_keys:")
    settings = settings_from_data(yaml.safe_load(uncommented), environ)
    assert [key.get_secret_value() for key in settings.server.api_keys] == ["dummy-client-key"]
    # The provider hint: its lines uncommented form one more entry of the providers list.
    hint = [line[2:] for line in text.splitlines() if line.startswith("#   ")]
    provider_lines = [line for line in hint if not line.lstrip().startswith("api_keys:")]
    assert provider_lines, "the simulated config shows how to add a provider"
    data = yaml.safe_load(uncommented)
    data["providers"] += yaml.safe_load("\n".join(provider_lines))
    settings = settings_from_data(data, environ)
    assert [p.name for p in settings.providers] == ["simulated", "deepseek"]
