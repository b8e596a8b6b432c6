"""The questions of ``ccrouter init`` (questionary): providers, keys, test calls, routes, port."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer

from ccrouter.cli.common import console

if TYPE_CHECKING:
    from ccrouter.init_config import InitPlan, ProviderChoice
    from ccrouter.presets import Preset
    from ccrouter.probe import ProbeResult

__all__ = ["run_wizard"]

Probe = Callable[[Sequence["ProviderChoice"]], Mapping[str, "ProbeResult"]]
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_NONE = "(none)"
_PER_PROVIDER = 30  # route choices offered per provider (a models list can hold hundreds)


def _ask(question: Any) -> Any:
    """The answer, or exit 1 on Ctrl-C / Ctrl-D (questionary answers None then)."""
    answer = question.ask()
    if answer is None:
        raise typer.Exit(1)
    return answer


def _pick_providers(environ: Mapping[str, str], preselected: Sequence[str]) -> list[str]:
    import questionary

    from ccrouter.presets import PRESETS

    found = [p for p in PRESETS if p.needs_key and p.key_var(environ)]
    rest = [p for p in PRESETS if p not in found]
    choices = [
        questionary.Choice(f"{p.label} ({p.key_var(environ)} found)", value=p.name, checked=True)
        for p in found
    ]
    choices += [questionary.Choice(p.label, value=p.name, checked=p.name in preselected) for p in rest]
    choices += [
        questionary.Choice("Another OpenAI-compatible server", value="custom:openai"),
        questionary.Choice("Another Anthropic-compatible server", value="custom:anthropic"),
    ]
    picked: list[str] = _ask(
        questionary.checkbox(
            "Which providers? (space: select, enter: done; keys found in your environment come first)",
            choices=choices,
            validate=lambda chosen: bool(chosen) or "choose at least one",
        )
    )
    return picked


def _custom(wire: str, taken: set[str]) -> tuple[str, str]:
    import questionary

    name: str = _ask(
        questionary.text(
            f"Name for this {wire}-compatible provider:",
            validate=lambda text: (
                "letters, digits, . _ - only"
                if not _NAME.match(text)
                else ("already used" if text in taken else True)
            ),
        )
    )
    url: str = _ask(
        questionary.text(
            f"Base URL of {name} (e.g. http://localhost:8000/v1):",
            validate=lambda text: text.startswith(("http://", "https://")) or "an http(s) URL",
        )
    )
    return name, url.strip()


def _key(name: str, known: Preset | None, environ: Mapping[str, str]) -> str | None:
    """The key reference for ``name``: an environment variable, or a typed key stored in a file."""
    import questionary

    from ccrouter.init_config import key_file_reference, store_key

    found = [var for var in (known.key_vars if known else ()) if environ.get(var)]
    options = [questionary.Choice(f"${var} from the environment", value=f"env:{var}") for var in found]
    options.append(questionary.Choice(f"Type it now (saved in ~/.ccrouter/keys/{name}, mode 0600)", "type"))
    options.append(questionary.Choice("Another environment variable", value="var"))
    if known is None:
        options.append(questionary.Choice("No key", value="none"))
    how: str = _ask(questionary.select(f"API key for {name}:", choices=options))
    if how.startswith("env:"):
        return "${" + how.removeprefix("env:") + "}"
    if how == "none":
        return None
    if how == "var":
        var: str = _ask(
            questionary.text(
                "Variable name:",
                validate=lambda text: bool(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", text)) or "a variable name",
            )
        )
        return "${" + var + "}"
    key: str = _ask(
        questionary.password(
            f"Key for {name} (not shown):", validate=lambda text: bool(text.strip()) or "empty"
        )
    )
    return key_file_reference(store_key(name, key))


def _providers(
    environ: Mapping[str, str], preselected: Sequence[str], base_urls: Mapping[str, str]
) -> list[ProviderChoice]:
    from ccrouter.init_config import ProviderChoice
    from ccrouter.presets import preset

    out: list[ProviderChoice] = []
    for picked in _pick_providers(environ, preselected):
        known = preset(picked)
        if known is None:
            wire = picked.removeprefix("custom:")
            name, url = _custom(wire, {choice.name for choice in out})
            out.append(ProviderChoice(name, wire, None, url, _key(name, None, environ), ()))
            continue
        key = _key(known.name, known, environ) if known.needs_key else None
        base_url = base_urls.get(known.name) or known.base_url
        out.append(ProviderChoice(known.name, known.wire, known.vendor, base_url, key, known.models))
    return out


def _tested(
    choices: list[ProviderChoice], probe: Probe | None
) -> tuple[list[ProviderChoice], dict[str, Any]]:
    import questionary

    from ccrouter.cli.init import show_probes, with_listed_models

    if probe is None:
        return choices, {}
    console().print("Testing each provider (one cheap call)...")
    results = dict(probe(choices))
    show_probes(results)
    kept = []
    for choice in choices:
        result = results.get(choice.name)
        if result is not None and not result.ok:
            keep = _ask(questionary.confirm(f"Keep {choice.name} in the configuration anyway?", default=True))
            if not keep:
                continue
        kept.append(with_listed_models(choice, result))
    if not kept:
        raise typer.Exit(1)
    return kept, results


def _options(choices: list[ProviderChoice], results: Mapping[str, Any]) -> list[str]:
    """Route choices: each provider's known models, then the ones its models list added."""
    import questionary

    options: list[str] = []
    for choice in choices:
        result = results.get(choice.name)
        listed = tuple(result.models or ()) if result is not None and result.ok else ()
        models = list(dict.fromkeys((*choice.models, *listed)))[:_PER_PROVIDER]
        if not models:
            models = [_ask(questionary.text(f"Model name to use on {choice.name}:", validate=bool))]
        options += [f"{choice.name},{model}" for model in models]
    return options


def _routes(choices: list[ProviderChoice], results: Mapping[str, Any]) -> dict[str, str]:
    import questionary

    from ccrouter.presets import preset

    options = _options(choices, results)
    default: str = _ask(questionary.select("Default route (most requests):", choices=options))
    routes = {"default": default}
    known = preset(default.split(",")[0])
    questions = {
        "background": "Background route (Claude Code's small fast tasks):",
        "think": "Think route (requests with thinking):",
        "long_context": "Long-context route (past 60,000 tokens):",
    }
    for scenario, message in questions.items():
        pick = getattr(known, scenario, None) if known else None
        suggestion = f"{known.name},{pick}" if known and pick else None
        initial = suggestion if suggestion in options else _NONE
        answer: str = _ask(questionary.select(message, choices=[_NONE, *options], default=initial))
        if answer != _NONE:
            routes[scenario] = answer
    return routes


def run_wizard(
    environ: Mapping[str, str],
    *,
    probe: Probe | None,
    port: int | None = None,
    preselected: Sequence[str] = (),
    base_urls: Sequence[str] = (),
) -> InitPlan:
    """Ask, test, and return what to write. ``--base-url NAME=URL`` flags override a preset's URL."""
    import questionary

    from ccrouter.init_config import InitPlan

    urls = dict(value.split("=", 1) for value in base_urls if "=" in value)
    choices, results = _tested(_providers(environ, preselected, urls), probe)
    routes = _routes(choices, results)
    if port is None:
        answer: str = _ask(
            questionary.text(
                "Gateway port:",
                default="3456",
                validate=lambda text: (text.isdigit() and 0 < int(text) < 65536) or "a port number",
            )
        )
        port = int(answer)
    return InitPlan(tuple(choices), routes, port)
