"""The price table: exact costs, name matching, overrides, local models, installed tables."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
import yaml

from ccrouter.config import PriceOverride, ProviderConfig
from ccrouter.errors import ConfigError
from ccrouter.messages import Usage
from ccrouter.pricing import ModelPrice, PriceTable, cost, cost_picos, format_usd

SONNET = ModelPrice(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"))
ANTHROPIC = ProviderConfig(name="anthropic", type="anthropic")


def test_cost_is_exact_in_picos() -> None:
    usage = Usage(input_tokens=1, output_tokens=2, cache_read_input_tokens=3, cache_creation_input_tokens=4)
    # 1*3 + 2*15 + 3*0.3 + 4*3.75 = 48.9 USD per million tokens -> 48.9e-6 USD.
    assert cost_picos(usage, SONNET) == 48_900_000
    assert cost(usage, SONNET) == pytest.approx(48.9e-6)
    odd = ModelPrice(Decimal("0.27"), Decimal("1.1"), Decimal("0.07"), Decimal("0.27"))
    many = sum(cost_picos(Usage(input_tokens=7, output_tokens=3), odd) for _ in range(1000))
    assert many == 1000 * (7 * 270_000 + 3 * 1_100_000)
    assert format_usd(many) == "0.00519"
    assert format_usd(0) == "0"


def test_lookup_follows_the_catalog_naming() -> None:
    table = PriceTable.load()
    assert table.lookup("claude-sonnet-4-5-20250929") == table.lookup("claude-sonnet-4-5")
    assert table.lookup("anthropic/claude-3.5-sonnet") == table.lookup("claude-3-5-sonnet")
    gpt5 = table.lookup("gpt-5")
    assert gpt5 is not None
    assert table.lookup("gpt-5.1-codex") == gpt5
    mini = table.lookup("gpt-5-mini")
    assert mini is not None
    assert mini.input == Decimal("0.25")  # its own entry, not the gpt-5 family's
    assert table.lookup("gpt-4o-2024-08-06") != table.lookup("gpt-4")
    assert table.lookup("totally-unknown") is None


def test_every_priced_catalog_family_has_a_price() -> None:
    """Models from vendors that charge (the catalog's anthropic, openai, deepseek, groq, google and
    moonshot, bedrock and azure entries) all resolve to a price."""
    data = yaml.safe_load(resources.files("ccrouter.data").joinpath("models.yaml").read_text())
    charged = {"anthropic", "openai", "deepseek", "groq", "google", "moonshot", "bedrock", "azure"}
    table = PriceTable.load()
    missing = [
        name
        for name, entry in data["models"].items()
        if entry.get("source") in charged and table.lookup(name) is None
    ]
    assert missing == []


def test_overrides_local_and_unknown() -> None:
    overrides = {
        "acme,gpt-4o": PriceOverride(input=9, output=9),
        "my-model": PriceOverride(input=1, output=2, cache_read=0.5),
    }
    table = PriceTable.load(overrides)
    acme = ProviderConfig(name="acme", type="openai", base_url="https://x.example/v1")
    assert table.price(acme, "gpt-4o") == ModelPrice(Decimal(9), Decimal(9), Decimal(9), Decimal(9), "config")
    assert table.price(ANTHROPIC, "gpt-4o") == table.lookup("gpt-4o")
    mine = table.price(acme, "my-model")
    assert mine is not None
    assert (mine.cache_read, mine.cache_write) == (Decimal("0.5"), Decimal(1))
    ollama = ProviderConfig(name="local", type="openai", base_url="http://localhost:11434/v1")
    free = table.price(ollama, "llama3.1")
    assert free is not None
    assert free.input == free.output == 0
    assert table.price(acme, "nobody-knows") is None


def test_installed_table_wins_and_bad_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text(
        "updated: '2027-01-01'\nmodels:\n  claude-sonnet-4-5: {input: 1, output: 2}\n"
    )
    table = PriceTable.load(config_dir=tmp_path)
    assert table.updated == "2027-01-01"
    assert len(table) == 1
    price = table.lookup("claude-sonnet-4-5")
    assert price is not None
    assert price.cache_read == Decimal(1)  # no cache price: charged as input, never free by accident
    with pytest.raises(ConfigError, match=r"models\.x\.output must be a non-negative number"):
        PriceTable.from_mapping({"models": {"x": {"input": 1, "output": -2}}})
    with pytest.raises(ConfigError, match="needs 'output'"):
        PriceTable.from_mapping({"models": {"x": {"input": 1}}})
    with pytest.raises(ConfigError, match="unknown keys"):
        PriceTable.from_mapping({"models": {"x": {"input": 1, "output": 1, "cache": 1}}})


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("eu.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-6-v1",
            "claude-opus-4-6",
        ),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5@20251001", "claude-haiku-4-5"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("us.amazon.nova-pro-v1:0", "amazon.nova-pro"),
        ("meta.llama3-3-70b-instruct-v1:0", "meta.llama3-3-70b-instruct"),
        ("gpt-35-turbo-0125", "gpt-35-turbo"),
    ],
)
def test_cloud_ids_are_priced_like_their_model(name: str, family: str) -> None:
    table = PriceTable.load()
    assert table.lookup(family) is not None
    assert table.lookup(name) == table.lookup(family)


def test_shipped_cloud_prices() -> None:
    table = PriceTable.load()
    nova = table.lookup("amazon.nova-pro-v1:0")
    assert nova is not None
    assert (nova.input, nova.output) == (Decimal("0.8"), Decimal("3.2"))
    assert nova.source.startswith("https://aws.amazon.com/bedrock/pricing/")
    assert "(retrieved 2026-12-07)" in nova.source
    # Claude on Bedrock is the list (global endpoint) price: Anthropic's own.
    sonnet = table.lookup("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert sonnet is not None
    assert (sonnet.input, sonnet.output, sonnet.cache_read, sonnet.cache_write) == (
        Decimal(3),
        Decimal(15),
        Decimal("0.3"),
        Decimal("3.75"),
    )


def test_an_exact_profile_key_wins_over_the_prefix_rule() -> None:
    """A table that lists a profile (LiteLLM's does, with the regional premium) prices it exactly."""
    table = PriceTable.from_mapping(
        {
            "models": {
                "claude-sonnet-4-5": {"input": 3, "output": 15},
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"input": 3.3, "output": 16.5},
            }
        }
    )
    regional = table.lookup("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert regional is not None
    assert regional.input == Decimal("3.3")
    fallback = table.lookup("global.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert fallback is not None
    assert fallback.input == Decimal(3)


def test_sources_may_be_dated_mappings() -> None:
    table = PriceTable.from_mapping(
        {
            "sources": {
                "s": {"url": "https://example.test/p", "retrieved": "2026-12-07", "note": "n"},
                "t": "plain",
            },
            "models": {
                "a": {"input": 1, "output": 1, "source": "s"},
                "b": {"input": 1, "output": 1, "source": "t"},
            },
        }
    )
    a, b = table.lookup("a"), table.lookup("b")
    assert a is not None
    assert b is not None
    assert a.source == "https://example.test/p (retrieved 2026-12-07); n"
    assert b.source == "plain"
    with pytest.raises(ConfigError, match=r"sources\.s needs a 'url'"):
        PriceTable.from_mapping({"sources": {"s": {"retrieved": "x"}}, "models": {}})
