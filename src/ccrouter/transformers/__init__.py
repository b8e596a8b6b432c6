"""Request and response transformers applied on the canonical model (claude-code-router's idea)."""
