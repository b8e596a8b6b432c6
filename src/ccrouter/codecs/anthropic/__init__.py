"""The Anthropic Messages wire: ``codec`` (requests and responses), ``stream`` (SSE events) and
``body`` (decoding a request from its bytes with the decode cache). https://docs.anthropic.com/en/api/messages"""
