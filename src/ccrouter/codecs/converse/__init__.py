"""Amazon Bedrock's Converse API (``ccrouter.codecs.converse.codec``, ``.stream``)."""
