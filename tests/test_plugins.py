"""Loading plugins (built-ins, entry points, ``plugins:`` by module name or path) and what the
Registry makes of them: clear errors naming the plugin, provider types and vendors checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.config_file import load_settings
from ccrouter.errors import ConfigError, PluginError
from ccrouter.plugins import BUILTIN_MODULES, Extensions, Registry, describe, load_plugins

EXAMPLE = (
    Path(__file__).parents[1] / "examples/plugins/ccrouter-example-header/src/ccrouter_example_header.py"
)
PROVIDER = "providers:\n  - name: up\n    type: %s\n    base_url: 'http://127.0.0.1:9'\n    models: [m]\n"


def _config(
    tmp_path: Path, *, kind: str = "anthropic", plugins: tuple[str, ...] = (), extra: str = ""
) -> Path:
    path = tmp_path / "config.yaml"
    listed = "".join(f"  - {item}\n" for item in plugins)
    text = (
        PROVIDER % kind + extra + "router: {default: 'up,m'}\n" + (f"plugins:\n{listed}" if plugins else "")
    )
    path.write_text(text, encoding="utf-8")
    return path


def _plugin(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("from ccrouter.hookspecs import hookimpl\n" + body, encoding="utf-8")
    return path


TYPE_PLUGIN = (
    "from ccrouter.providers.anthropic import AnthropicAdapter\n"
    "from ccrouter.providers.base import ProviderType\n\n"
    "@hookimpl\ndef register_providers(register):\n"
    "    register(ProviderType('relay', adapter=lambda config, registry: AnthropicAdapter(config)))\n"
)


def test_the_builtins_register_the_provider_types_and_vendors() -> None:
    registry = Registry.build(load_plugins(entry_points=False))
    assert list(registry.providers) == [
        "anthropic",
        "openai",
        "gemini",
        "simulated",
        "vertex",
        "bedrock",
        "azure",
        "openai_responses",
    ]
    assert {"openai", "deepseek", "groq", "openrouter", "ollama", "github", "generic"} <= set(
        registry.vendors
    )
    infos = {info.name: info for info in describe(registry)}
    assert set(BUILTIN_MODULES) <= set(infos)
    vendors = infos["ccrouter.builtins.vendors"]
    assert (vendors.origin, vendors.hooks) == ("built-in", ("register_vendors",))
    assert "vendor deepseek" in vendors.provides


def test_a_bad_type_names_the_registered_ones_including_a_plugins(tmp_path: Path) -> None:
    _plugin(tmp_path, "relay.py", TYPE_PLUGIN)
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, kind="rely", plugins=("relay.py",)))
    assert (
        "providers[0].type: Input should be 'anthropic', 'openai', 'gemini', 'simulated', 'vertex',"
        " 'bedrock', 'azure', 'openai_responses' or 'relay' (got 'rely')" in caught.value.message
    )
    # The plugin's own type is accepted.
    assert load_settings(_config(tmp_path, kind="relay", plugins=("relay.py",))).providers[0].type == "relay"


def test_a_vendor_must_be_a_registered_profile_of_its_type(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"providers\[0\]: vendor 'acme' is not one of type 'openai': should be 'openai', "
    ):
        load_settings(_config(tmp_path, kind="openai", extra="    vendor: acme\n"))


def test_settings_built_without_the_file_are_checked_when_the_app_is_built() -> None:
    settings = Settings.model_validate(
        {"providers": [{"name": "up", "type": "nope", "base_url": "http://x"}], "router": {"default": "up,m"}}
    )
    with pytest.raises(
        ConfigError, match=r"providers\[0\]\.type: Input should be 'anthropic', .* \(got 'nope'\)"
    ):
        create_app(settings)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "raise ImportError('no such thing')\n",
            r"plugin 'bad\.py' failed to load: ImportError\('no such thing'\)",
        ),
        (
            "@hookimpl\ndef register_vendors(register):\n    raise RuntimeError('boom')\n",
            r"plugin 'bad\.py' failed in register_vendors: RuntimeError\('boom'\)",
        ),
        (
            "@hookimpl\ndef register_vendor(register):\n    pass\n",
            r"plugin 'bad\.py' cannot be registered: .*register_vendor",
        ),
        (
            "@hookimpl\ndef register_vendors(add):\n    pass\n",
            r"plugin 'bad\.py' cannot be registered: .*'add'",
        ),
    ],
    ids=["import", "raises-registering", "unknown-hook", "wrong-argument"],
)
def test_a_broken_plugin_is_a_plugin_error_naming_it(tmp_path: Path, body: str, expected: str) -> None:
    _plugin(tmp_path, "bad.py", body)
    config = _config(tmp_path, plugins=("bad.py",))
    with pytest.raises(PluginError, match=expected) as caught:
        load_settings(config)
    assert caught.value.message.startswith(f"{config}: plugin 'bad.py'")


def test_a_missing_plugin_is_named(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"plugins: 'gone\.py': no such file"):
        load_settings(_config(tmp_path, plugins=("gone.py",)))
    with pytest.raises(
        PluginError, match=r"plugin 'no_such_plugin_module' failed to import: ModuleNotFoundError"
    ):
        load_settings(_config(tmp_path, plugins=("no_such_plugin_module",)))


def test_a_plugin_by_module_name_and_what_it_provides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    settings = load_settings(_config(tmp_path, plugins=("ccrouter_example_header",)))
    registry = Registry.build(load_plugins(settings.plugins, base_dir=tmp_path))
    extensions = Extensions.build(registry, settings)
    info = next(i for i in describe(registry, extensions) if i.name == "ccrouter_example_header")
    assert (info.origin, info.version, info.hooks) == ("config", "0.1.0", ("register_response_hooks",))
    assert info.provides == ("response hook add_header",)
    # The same module named twice (here: by name and by the same name again) is loaded once.
    twice = load_plugins(["ccrouter_example_header", "ccrouter_example_header"], entry_points=False)
    assert [name for name, _ in twice.list_name_plugin()][-1] == "ccrouter_example_header"
    assert len(twice.list_name_plugin()) == len(BUILTIN_MODULES) + 1


def test_a_later_plugin_replaces_a_builtins_entry(tmp_path: Path) -> None:
    _plugin(
        tmp_path,
        "mirror.py",
        "from ccrouter.providers.openai_vendors import Vendor\n\n"
        "@hookimpl\ndef register_vendors(register):\n"
        "    register(Vendor('deepseek', 'https://deepseek-mirror.example/v1'))\n",
    )
    registry = Registry.build(load_plugins(["mirror.py"], base_dir=tmp_path, entry_points=False))
    assert registry.vendors["deepseek"].base_url == "https://deepseek-mirror.example/v1"
    assert registry.provided["mirror.py"] == ("vendor deepseek",)
