"""The OpenAI Responses wire (``POST /v1/responses``): ``front`` (our own Responses surface: a
client's request -> canonical, a canonical answer -> a Response object), ``front_stream`` (canonical
stream events -> Responses SSE events). https://platform.openai.com/docs/api-reference/responses"""
