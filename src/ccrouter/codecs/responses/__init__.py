"""The OpenAI Responses API wire (https://platform.openai.com/docs/api-reference/responses), both ways.

Upstream side (ccrouter calls ``POST {base_url}/responses``, ``type: openai_responses``): ``wire`` (the
shapes), ``request`` (canonical request -> Responses request), ``response`` (Response object ->
canonical) and ``stream`` (the streamed events -> canonical events).

Front side (a Responses client calls ccrouter's ``POST /v1/responses``): ``front`` (a client's request
-> canonical, a canonical answer -> a Response object) and ``front_stream`` (canonical stream events ->
Responses SSE events).
"""
