"""The ``isoview`` command line: one typer app with the library commands (simulate, correct, fuse, doctor)
and the service commands (watch, run, serve, config, demo); the console script ``isoview = "flows.cli:app"``."""

from __future__ import annotations

from typing import Annotated

from flows.interpreter import tune_interpreter

tune_interpreter()  # before the commands import numpy: OpenBLAS reads its thread count once

import typer  # noqa: E402

from flows.cli import export, library, service, view  # noqa: E402
from flows.cli.common import log_to_terminal  # noqa: E402

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="IsoView light-sheet processing: correct, compress, fuse.")


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False) -> None:
    """IsoView light-sheet processing."""
    log_to_terminal(verbose)


for name, command in {**library.COMMANDS, **service.COMMANDS, **view.COMMANDS}.items():
    app.command(name)(command)
app.add_typer(export.app, name="export")
