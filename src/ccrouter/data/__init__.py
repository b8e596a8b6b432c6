"""Data files shipped with ccrouter (read through ``importlib.resources``)."""
