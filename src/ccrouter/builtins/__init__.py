"""ccrouter's own plugins: each module implements hooks of ``ccrouter.hookspecs`` exactly as a third
party's plugin would, and ``ccrouter.plugins`` registers them first."""
