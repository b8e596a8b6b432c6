"""The OpenAI Responses API wire (https://platform.openai.com/docs/api-reference/responses).

Upstream side (ccrouter calls ``POST {base_url}/responses``): ``wire`` (the shapes), ``request``
(canonical request -> Responses request), ``response`` (Response object -> canonical) and
``stream`` (the streamed events -> canonical events). The front side (a Responses client calls
ccrouter) lives next to them in its own modules.
"""
