"""The codec tests, one folder per wire format (as ``ccrouter.codecs``). Pytest puts this folder on
``sys.path`` (its ``prepend`` import mode does so for every conftest), so the tests of each wire
import the shared helpers as ``golden``."""
