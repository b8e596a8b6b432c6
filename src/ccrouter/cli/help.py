"""Help pages without a type for flags: typer prints ``<bool>`` beside every flag (``--json``,
``--watch / --no-watch``, ``--help`` itself), which reads as if the flag took a value.

``HelpGroup`` is the root command's class; when typer builds the command tree (at each run, with
the plugins' commands already added) it blanks the metavar of every flag in the tree, so commands
added later by anyone get the same help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer._click import Command  # typer vendors click; it exports no name for a command

__all__ = ["HelpGroup", "walk"]


def walk(command: Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Command]]:
    """Every command of the tree under ``command`` (itself first) with its path of names."""
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, (*path, name))
    return found


def _blank_flag_metavars(command: Command) -> None:
    # The help option is made on first use and kept (click caches it); made here, with the names a
    # context would give it, so that it is blanked too.
    help_option = command.get_help_option(typer.Context(command))
    for param in [*command.params, help_option]:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""  # the help page shows the metavar, when set, instead of the type


class HelpGroup(TyperGroup):
    """The root group: flags show no ``<bool>`` in any command's help."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for _, command in walk(self):
            _blank_flag_metavars(command)
