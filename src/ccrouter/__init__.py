"""ccrouter: a gateway between Claude Code (or any Anthropic/OpenAI SDK client) and many providers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
