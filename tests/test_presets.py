"""The known providers, one table for the first-run config and `ccrouter init`."""

from __future__ import annotations

from ccrouter.config_file import detect_providers, settings_from_data
from ccrouter.presets import PRESETS, preset


def test_google_api_key_is_gemini_too_and_gemini_api_key_wins() -> None:
    (found,) = detect_providers({"GOOGLE_API_KEY": "g-key"}, ollama_probe=lambda: False)
    assert (found["name"], found["api_key"]) == ("gemini", "${GOOGLE_API_KEY}")
    (both,) = detect_providers({"GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "m"}, ollama_probe=lambda: False)
    assert both["api_key"] == "${GEMINI_API_KEY}"


def test_every_preset_with_its_scenario_picks_is_a_valid_configuration() -> None:
    for known in PRESETS:
        routes = {"default": f"{known.name},{known.models[0]}"}
        for scenario in ("background", "think", "long_context"):
            pick = getattr(known, scenario)
            if pick is not None:
                assert pick in known.models, (known.name, scenario)
                routes[scenario] = f"{known.name},{pick}"
        key = "${KEY}" if known.needs_key else None
        settings_from_data({"providers": [known.provider(key)], "router": routes}, {"KEY": "dummy-key-value"})
    assert preset("deepseek") is not None
    assert preset("nope") is None
