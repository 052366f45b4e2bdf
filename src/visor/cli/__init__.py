"""The `visor` command line: one module per group of commands, each command's options made
from its operation's fields (`visor.cli.options`), its printed report written here."""

from __future__ import annotations

import logging
import sys

from visor.cli import data, fixing, vectors, workspace  # noqa: F401  (they add the commands)
from visor.cli.base import _styled, app, console
from visor.errors import VisorError

__all__ = ["app", "main"]


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except VisorError as e:  # errors raised while parsing arguments or building the app
        console.print(_styled("error:", "red", e.message))
        sys.exit(1)
