"""The OpenAI chat-completions wire: ``chat`` (upstream requests and responses, per-vendor
``Dialect``), ``front`` (our own chat-completions surface), ``stream`` (SSE chunks both ways),
``body`` (decoding a request from its bytes), ``memo`` (reused translations of earlier requests) and
``toolnames`` (wire-safe tool names and ids, streamed arguments).
https://platform.openai.com/docs/api-reference/chat"""
