"""The dashboard at ``/ui``: server-rendered pages (``pages``), sessions (``session``), its files
(``assets``, with ``templates/`` and ``static/`` beside them)."""
