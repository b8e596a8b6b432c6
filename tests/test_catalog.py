from __future__ import annotations

import datetime
from importlib import resources

import pytest
import yaml

from ccrouter.catalog import Catalog, ModelInfo, clamp_max_tokens
from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def _provider(models: list[object], type_: str = "anthropic") -> ProviderConfig:
    return ProviderConfig.model_validate({"name": "p", "type": type_, "models": models})


def test_load_reads_the_shipped_table_once() -> None:
    assert Catalog.load() is Catalog.load()


def test_exact_names(catalog: Catalog) -> None:
    assert catalog.lookup("deepseek-chat") == ModelInfo(128000, 8192, True, False, False)
    assert catalog.lookup("deepseek-reasoner") == ModelInfo(128000, 65536, True, False, True)
    assert catalog.lookup("gpt-4o") == ModelInfo(128000, 16384, True, True, False)
    assert catalog.lookup("llama-3.3-70b-versatile") == ModelInfo(131072, 32768, True, False, False)
    assert catalog.lookup("gemini-2.5-pro") == ModelInfo(1048576, 65536, True, True, True)
    assert catalog.lookup("claude-opus-4-1") == ModelInfo(200000, 32000, True, True, True)
    assert catalog.lookup("o3") == ModelInfo(200000, 100000, True, True, True)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),  # Vertex spelling
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini", "gpt-4.1"),
        ("gpt-5.1-codex", "gpt-5"),
        ("gpt-5-chat-latest", "gpt-5-chat"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("deepseek-chat-v3.1", "deepseek-chat"),
        ("qwen2.5-coder:7b", "qwen2.5-coder"),  # Ollama tag dropped
        ("llama3.2-vision:11b", "llama3.2-vision"),
        ("gpt-oss:20b", "gpt-oss"),
        ("kimi-k2-0905-preview", "kimi-k2"),
    ],
)
def test_family_prefixes(catalog: Catalog, name: str, family: str) -> None:
    assert catalog.lookup(name) == catalog.lookup(family)
    assert catalog.lookup(name) is not None


def test_prefix_needs_a_boundary(catalog: Catalog) -> None:
    # "gpt-4" must not swallow "gpt-4o..." (the next character is not a separator).
    assert catalog.lookup("gpt-4-0613") == ModelInfo(8192, 8192, True, False, False)
    assert catalog.lookup("gpt-4omega") is None
    assert catalog.lookup("o3x") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
        ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"),
        ("anthropic/claude-3.7-sonnet:thinking", "claude-3-7-sonnet"),
        ("openai/gpt-oss-120b", "gpt-oss"),
        ("moonshotai/kimi-k2-instruct-0905", "kimi-k2-instruct-0905"),
        ("google/gemini-2.5-pro", "gemini-2.5-pro"),
        ("meta-llama/llama-4-scout-17b-16e-instruct", "llama-4-scout-17b-16e-instruct"),
        ("qwen/qwen3-32b", "qwen3-32b"),
        ("deepseek/deepseek-r1", "deepseek-r1"),
    ],
)
def test_vendor_prefixed_names_match_by_the_part_after_the_slash(
    catalog: Catalog, name: str, expected: str
) -> None:
    assert catalog.lookup(name) == catalog.lookup(expected)
    assert catalog.lookup(name) is not None


def test_groq_and_moonshot_figures(catalog: Catalog) -> None:
    assert catalog.lookup("moonshotai/kimi-k2-instruct-0905") == ModelInfo(262144, 16384, True, False, False)
    assert catalog.lookup("openai/gpt-oss-120b") == ModelInfo(131072, 65536, True, False, True)


def test_names_are_case_insensitive(catalog: Catalog) -> None:
    assert catalog.lookup("DeepSeek-Chat") == catalog.lookup("deepseek-chat")


def test_unknown_model_gets_the_conservative_default(catalog: Catalog) -> None:
    assert catalog.lookup("my-local-finetune") is None
    assert catalog.default == ModelInfo(128000, 8192, True, False, False)
    assert catalog.info(_provider([]), "my-local-finetune") == catalog.default


def test_config_overrides_the_table_field_by_field(catalog: Catalog) -> None:
    provider = _provider([{"name": "deepseek-chat", "max_output_tokens": 4096, "vision": True}])
    assert catalog.info(provider, "deepseek-chat") == ModelInfo(128000, 4096, True, True, False)
    # A model the provider lists without capabilities keeps the table's figures.
    assert catalog.info(_provider(["gpt-4o"]), "gpt-4o") == catalog.lookup("gpt-4o")


def test_config_overrides_the_default_for_unknown_models(catalog: Catalog) -> None:
    provider = _provider([{"name": "house-model", "context_window": 32000, "tools": False}])
    assert catalog.info(provider, "house-model") == ModelInfo(32000, 8192, False, False, False)


def test_simulated_provider_can_do_everything(catalog: Catalog) -> None:
    provider = ProviderConfig.model_validate({"name": "sim", "type": "simulated", "models": ["sim-1"]})
    expected = ModelInfo(200000, 64000, True, True, True)
    assert catalog.info(provider, "sim-1") == expected
    assert catalog.info(provider, "anything") == expected
    assert catalog.info(_provider([]), "anything") == catalog.default


def test_clamp_max_tokens() -> None:
    info = ModelInfo(128000, 8192, True, False, False)
    assert clamp_max_tokens(64000, info) == 8192
    assert clamp_max_tokens(8192, info) == 8192
    assert clamp_max_tokens(100, info) == 100
    assert clamp_max_tokens(0, info) == 1


def test_from_mapping_rejects_bad_entries() -> None:
    default = {
        "context_window": 1000,
        "max_output_tokens": 100,
        "tools": True,
        "vision": False,
        "thinking": False,
    }
    ok = Catalog.from_mapping(
        {"default": default, "models": {"m": {"context_window": 10, "max_output_tokens": 5}}}
    )
    assert ok.lookup("m") == ModelInfo(10, 5, True, False, False)
    with pytest.raises(ConfigError, match=r"models\.m has unknown keys \['ctx'\]"):
        Catalog.from_mapping({"default": default, "models": {"m": {"ctx": 10}}})
    with pytest.raises(ConfigError, match=r"models\.m\.vision must be true or false"):
        Catalog.from_mapping({"default": default, "models": {"m": {"vision": "yes"}}})
    with pytest.raises(ConfigError, match=r"models\.m\.context_window must be a positive integer"):
        Catalog.from_mapping({"default": default, "models": {"m": {"context_window": 0}}})
    with pytest.raises(ConfigError, match=r"default\.thinking"):
        Catalog.from_mapping({"default": {**default, "thinking": None}, "models": {}})


def test_shipped_table_is_dated_and_every_entry_names_a_source() -> None:
    text = resources.files("ccrouter.data").joinpath("models.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    datetime.date.fromisoformat(data["updated"])
    sources = set(data["sources"])
    missing = [name for name, entry in data["models"].items() if entry.get("source") not in sources]
    assert missing == []


@pytest.mark.parametrize(
    ("name", "context_window", "max_output_tokens"),
    [
        ("claude-opus-4-5", 200000, 64000),
        ("claude-sonnet-4", 200000, 64000),
        ("claude-haiku-4-5", 200000, 64000),
        ("claude-3-7-sonnet-20250219", 200000, 64000),
        ("claude-3-5-sonnet-20241022", 200000, 8192),
        ("gpt-4.1", 1047576, 32768),
        ("gpt-5", 400000, 128000),
        ("gpt-5-mini", 400000, 128000),
        ("o3", 200000, 100000),
        ("o4-mini", 200000, 100000),
        ("gemini-3-pro-preview", 1048576, 65536),
        ("gemini-2.5-flash", 1048576, 65536),
        ("llama3.1:8b", 131072, 8192),
    ],
)
def test_families_the_router_meets_most(
    catalog: Catalog, name: str, context_window: int, max_output_tokens: int
) -> None:
    info = catalog.lookup(name)
    assert info is not None
    assert (info.context_window, info.max_output_tokens) == (context_window, max_output_tokens)


# -- cloud spellings (issue 16): Bedrock ids, profiles and ARNs, Vertex "@" versions, Azure names

_ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"),
        # Cross-Region inference profiles: the geography is dropped, whichever it is.
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("eu.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
        ("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("jp.anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("au.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("us-gov.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet"),
        ("US.Anthropic.Claude-Opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        # ARNs: the id after the last "/".
        (
            f"arn:aws:bedrock:us-east-1:{_ACCOUNT}:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4-5",
        ),
        (
            "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "claude-3-5-haiku",
        ),
        (
            f"arn:aws:bedrock:us-west-2:{_ACCOUNT}:inference-profile/us.amazon.nova-pro-v1:0",
            "amazon.nova-pro",
        ),
        # Non-Claude Bedrock models keep their vendor prefix; a profile prefix still goes.
        ("amazon.nova-pro-v1:0", "amazon.nova-pro"),
        ("us.amazon.nova-lite-v1:0", "amazon.nova-lite"),
        ("eu.amazon.nova-micro-v1:0", "amazon.nova-micro"),
        ("us.amazon.nova-premier-v1:0", "amazon.nova-premier"),
        ("meta.llama3-3-70b-instruct-v1:0", "meta.llama3-3-70b-instruct"),
        ("us.meta.llama4-maverick-17b-instruct-v1:0", "meta.llama4-maverick-17b-instruct"),
        ("mistral.mistral-large-2407-v1:0", "mistral.mistral-large-2407"),
        ("us.mistral.pixtral-large-2502-v1:0", "mistral.pixtral-large-2502"),
    ],
)
def test_bedrock_ids_profiles_and_arns(catalog: Catalog, name: str, family: str) -> None:
    assert catalog.lookup(family) is not None
    assert catalog.lookup(name) == catalog.lookup(family)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("claude-haiku-4-5@20251001", "claude-haiku-4-5"),
        ("claude-opus-4-5@20251101", "claude-opus-4-5"),
        ("claude-sonnet-4@20250514", "claude-sonnet-4"),
        ("claude-3-7-sonnet@20250219", "claude-3-7-sonnet"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("claude-3-5-haiku@20241022", "claude-3-5-haiku"),
        ("claude-3-haiku@20240307", "claude-3-haiku"),
        ("publishers/anthropic/models/claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
    ],
)
def test_vertex_ids_meet_the_vendors_entries(catalog: Catalog, name: str, family: str) -> None:
    # "@" is a family boundary: Vertex's versions need no table entry of their own.
    assert catalog.lookup(family) is not None
    assert catalog.lookup(name) == catalog.lookup(family)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o"),
        ("gpt-4.1", "gpt-4.1"),
        ("gpt-4.1-nano", "gpt-4.1"),
        ("gpt-5", "gpt-5"),
        ("gpt-5-mini", "gpt-5"),
        ("gpt-5-chat", "gpt-5-chat"),
        ("o3", "o3"),
        ("o3-mini", "o3-mini"),
        ("o4-mini", "o4-mini"),
        ("gpt-35-turbo-0125", "gpt-35-turbo"),
        ("gpt-35-turbo-16k", "gpt-35-turbo"),
    ],
)
def test_azure_names(catalog: Catalog, name: str, family: str) -> None:
    assert catalog.lookup(family) is not None
    assert catalog.lookup(name) == catalog.lookup(family)


def test_cloud_prefixes_do_not_swallow_other_names(catalog: Catalog) -> None:
    # The geography must be followed by "vendor."; Bedrock's Llama is not Ollama's llama3.
    assert catalog.lookup("us.gpt-4o") is None
    assert catalog.lookup("meta.llama3-3-70b-instruct-v1:0") != catalog.lookup("llama3")
    assert catalog.lookup("meta.llama3-70b-instruct-v1:0") is None  # not listed: the default, not llama3
    assert catalog.lookup("arn:aws:bedrock:us-east-1:1:application-inference-profile/a1b2c3") is None
    assert catalog.lookup("cohere.command-r-v1:0") is None


def test_cloud_entries_name_a_dated_source() -> None:
    for table in ("models.yaml", "prices.yaml"):
        data = yaml.safe_load(resources.files("ccrouter.data").joinpath(table).read_text(encoding="utf-8"))
        cloud = {"bedrock", "azure"}
        entries = [name for name, entry in data["models"].items() if entry.get("source") in cloud]
        assert len(entries) >= 10, table
        for key in cloud:
            source = data["sources"][key]
            assert source["url"].startswith("https://"), (table, key)
            datetime.date.fromisoformat(source["retrieved"])
