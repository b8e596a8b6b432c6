"""The fakes ccrouter ships: fake Anthropic / OpenAI / Gemini upstreams with scripted replies and faults.

Used by ccrouter's own tests and benchmarks, and as the simulated provider a newcomer gets without
API keys::

    async with FakeUpstream() as fake:
        fake.script(Reply(text="hello"), Fault("status", status=529))
        ...  # point a client or a provider at fake.url

and a fake identity provider for single sign-on (``SigningKey``, ``forge``, ``JwksServer``)::

    key = SigningKey.rsa("k1")
    async with JwksServer([key]) as idp:
        ...  # server.jwt.jwks_url = idp.url; key.mint({...}) is a token it signed

and a fake Google Vertex AI with its OAuth token endpoint (``FakeVertex``, ``FakeGoogleAuth``)::

    async with FakeGoogleAuth(expires_in=3) as auth, FakeVertex(auth) as vertex:
        key_file = auth.service_account()  # its token_uri is the fake; vertex.url is the base_url

and a fake AWS Bedrock runtime (``FakeBedrock``, ``StreamFault``) checking SigV4 signatures::

    async with FakeBedrock(region="us-east-1", keys={"AKIDFAKE": "secret"}) as bedrock:
        bedrock.stream_faults(StreamFault("bad_message_crc"))  # bedrock.url is the base_url
Also (issue 16) a fake Azure OpenAI resource (``FakeAzureOpenAI``) and a forward proxy for egress
tests (``ForwardProxy``: CONNECT and absolute-form forwarding, optional Basic proxy auth).
"""

from typing import TYPE_CHECKING, Any

from ccrouter.testing.fake_upstream import DefaultBehaviour, FakeUpstream
from ccrouter.testing.script import Fault, RecordedRequest, Reply, ToolCall, item_from_dict, item_to_dict
from ccrouter.testing.simulated import SIMULATED_NOTICE, simulated_reply

if TYPE_CHECKING:
    from ccrouter.testing.azure import FakeAzureOpenAI
    from ccrouter.testing.bedrock import FakeBedrock, StreamFault
    from ccrouter.testing.jwks import JwksServer, SigningKey, forge, jwks_document
    from ccrouter.testing.proxy import ForwardProxy
    from ccrouter.testing.vertex import FakeGoogleAuth, FakeVertex

__all__ = [
    "SIMULATED_NOTICE",
    "DefaultBehaviour",
    "FakeAzureOpenAI",
    "FakeBedrock",
    "FakeGoogleAuth",
    "FakeUpstream",
    "FakeVertex",
    "Fault",
    "ForwardProxy",
    "JwksServer",
    "RecordedRequest",
    "Reply",
    "SigningKey",
    "StreamFault",
    "ToolCall",
    "forge",
    "item_from_dict",
    "item_to_dict",
    "jwks_document",
    "simulated_reply",
]


# The identity provider's names load cryptography (~10 MB): imported on first use, not by every
# gateway that serves the simulated provider (PEP 562).
_JWKS = frozenset({"JwksServer", "SigningKey", "forge", "jwks_document"})
# -- issue 16, Google Vertex AI: the fake Vertex and token endpoint (cryptography and PyJWT as well).
_VERTEX = frozenset({"FakeGoogleAuth", "FakeVertex"})


# -- issue 16, AWS Bedrock: the fake Bedrock runtime (botocore for SigV4 checks).
_BEDROCK = frozenset({"FakeBedrock", "StreamFault"})


def __getattr__(name: str) -> Any:
    if name in _JWKS:
        from ccrouter.testing import jwks

        return getattr(jwks, name)
    if name == "FakeAzureOpenAI":
        from ccrouter.testing import azure

        return azure.FakeAzureOpenAI
    if name == "ForwardProxy":
        from ccrouter.testing import proxy

        return proxy.ForwardProxy
    if name in _VERTEX:
        from ccrouter.testing import vertex

        return getattr(vertex, name)
    if name in _BEDROCK:
        from ccrouter.testing import bedrock

        return getattr(bedrock, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
