"""The Gemini ``generateContent`` wire, upstream side: ``codec`` (requests and responses),
``stream`` (streamed chunks) and ``schema`` (JSON Schema cleaning). https://ai.google.dev/api/generate-content"""
