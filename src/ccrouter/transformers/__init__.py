"""Request and response transformers applied on the canonical model (claude-code-router's idea).

``base`` is the interface a plugin implements; ``apply`` builds the chains from the config and wraps
the providers; ``request`` and ``tools`` hold the built-ins (registered by
``ccrouter.builtins.transformers``)."""

from ccrouter.transformers.base import StreamTransform, Transformer, TransformerFactory, detached

__all__ = ["StreamTransform", "Transformer", "TransformerFactory", "detached"]
