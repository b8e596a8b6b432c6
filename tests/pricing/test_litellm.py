"""LiteLLM's model_prices_and_context_window.json read by `prices update`: detection, conversion,
bad input (a hand-made excerpt of the real format in tests/fixtures/litellm_prices.json)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import yaml

from ccrouter.errors import ConfigError
from ccrouter.pricing import PriceTable
from ccrouter.pricing.litellm import convert, looks_like_litellm
from ccrouter.pricing.table import MAX_PRICE_FILE_BYTES
from ccrouter.pricing.update import read_update

FIXTURE = Path(__file__).parent.parent / "fixtures" / "litellm_prices.json"
TODAY = "2026-12-07"


@pytest.fixture(scope="module")
def litellm() -> dict[str, object]:
    data = orjson.loads(FIXTURE.read_bytes())
    assert isinstance(data, dict)
    return data


def test_detects_litellm_and_not_our_own_table(litellm: dict[str, object]) -> None:
    assert looks_like_litellm(litellm)
    assert looks_like_litellm({"gpt-4o": {"input_cost_per_token": 1e-6, "mode": "chat"}})  # no sample_spec
    assert not looks_like_litellm({"models": {"m": {"input": 1, "output": 2}}})
    assert not looks_like_litellm({"updated": "2026-01-01"})
    assert not looks_like_litellm(["gpt-4o"])


def test_converts_text_models_to_prices_per_million(litellm: dict[str, object]) -> None:
    conversion = convert(litellm, origin="prices.json", updated=TODAY)
    models = conversion.table["models"]
    assert sorted(models) == [
        "amazon.nova-pro-v1:0",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5@20250929",
        "gemini-2.5-flash",
        "gpt-35-turbo",
        "gpt-4o",
        "gpt-5-codex",  # mode "responses": a text model too
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    ]
    assert models["claude-sonnet-4-5"] == {
        "input": 3,
        "output": 15,
        "cache_read": 0.3,
        "cache_write": 3.75,
        "source": "litellm:anthropic",
    }
    # Float noise (3.0000000000000004e-07) is rounded away; a missing cache write price is left out.
    assert models["gemini-2.5-flash"] == {
        "input": 0.3,
        "output": 2.5,
        "cache_read": 0.03,
        "source": "litellm:gemini",
    }
    assert models["us.anthropic.claude-haiku-4-5-20251001-v1:0"]["input"] == 1.1
    assert conversion.table["updated"] == TODAY
    assert conversion.table["sources"]["litellm:azure"] == "prices.json (LiteLLM, litellm_provider azure)"


def test_the_maker_and_the_shortest_path_win_a_shared_name(litellm: dict[str, object]) -> None:
    models = convert(litellm, origin="f", updated=TODAY).table["models"]
    assert models["gpt-4o"]["input"] == 2.5  # openai's, not azure/gpt-4o's 2.75
    assert models["claude-sonnet-4-5"]["input"] == 3  # anthropic's, not vertex_ai's regional 3.3
    assert models["anthropic.claude-haiku-4-5-20251001-v1:0"]["input"] == 1  # not bedrock/us-east-1/...


def test_skipped_entries_are_counted_by_reason(litellm: dict[str, object]) -> None:
    conversion = convert(litellm, origin="f", updated=TODAY)
    assert conversion.kept == 9
    assert conversion.skipped == {
        "not a text model": 2,  # the embedding and the image model
        "sold under a name already taken": 3,
        "without per-token prices": 3,  # text price, negative price, no output price
        "not an object": 1,
    }
    assert conversion.kept + sum(conversion.skipped.values()) == len(litellm) - 1  # all but sample_spec
    assert conversion.summary() == (
        "9 models converted; skipped 9 (2 not a text model, 1 not an object, "
        "3 sold under a name already taken, 3 without per-token prices)"
    )


def test_read_update_gives_a_checked_table_whose_lookups_follow_the_catalog() -> None:
    update = read_update(FIXTURE, today=TODAY)
    assert update.conversion is not None
    assert update.table.updated == TODAY
    table = PriceTable.from_mapping(yaml.safe_load(update.text))  # what gets installed reads back the same
    assert len(table) == len(update.table) == 9
    regional = table.lookup("us.anthropic.claude-haiku-4-5-20251001-v1:0")
    assert regional is not None
    assert regional.input == Decimal("1.1")
    through_arn = table.lookup(
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    )
    assert through_arn == regional
    vertex = table.lookup("claude-sonnet-4-5@20250929")
    assert vertex is not None
    assert vertex.source == "litellm_prices.json (LiteLLM, litellm_provider vertex_ai-anthropic_models)"
    nova = table.lookup("eu.amazon.nova-pro-v1:0")  # no eu. entry: the base id's price
    assert nova is not None
    assert (nova.input, nova.output, nova.cache_read) == (Decimal("0.8"), Decimal("3.2"), Decimal("0.8"))
    assert table.lookup("azure/gpt-4o") == table.lookup("gpt-4o")


def test_our_own_format_passes_through_unchanged(tmp_path: Path) -> None:
    ours = tmp_path / "p.json"
    ours.write_text('{"updated": "2027-01-01", "models": {"m": {"input": 1, "output": 2}}}')
    update = read_update(ours, today=TODAY)
    assert update.conversion is None
    assert update.text == ours.read_text()
    assert update.table.updated == "2027-01-01"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"gpt-4o": {"mode": "chat",', "not valid JSON"),
        (
            b'{"gpt-4o": {"mode": "chat", "input_cost_per_token": NaN, "output_cost_per_token": 1}}',
            "not valid JSON",
        ),
        (b"[1, 2, 3]", "expected ccrouter's price table"),
        (b"just words", "expected ccrouter's price table"),
        (b"models: [a, b]", "expected ccrouter's price table"),
        (b"key: [unclosed", "neither JSON nor YAML"),
        (b'{"x": 1}', "expected ccrouter's price table"),
        (b"\xff\xfe{not utf-8}", "not UTF-8"),
        (
            b'{"sample_spec": {}, "embed": {"mode": "embedding", "input_cost_per_token": 1e-8}}',
            "no text model with per-token prices",
        ),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        read_update(path, today=TODAY)


def test_size_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_PRICE_FILE_BYTES + 1)  # sparse: nothing written, a real file all the same
    with pytest.raises(ConfigError, match="larger than 32 MiB"):
        read_update(path, today=TODAY)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the price table"):
        read_update(tmp_path / "absent.json", today=TODAY)
