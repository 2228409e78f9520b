"""What every ``isoview`` command shares: the terminal console and its logging, one-line errors, progress bars."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError

if TYPE_CHECKING:
    from isoview_core.acquisition import Acquisition

console = Console(stderr=True)
"""The terminal (stderr): progress, results and errors; stdout stays free for what a command prints to be piped."""


def log_to_terminal(verbose: bool) -> None:
    """Send log records to the terminal: every step with `verbose`, warnings and errors otherwise.

    Parameters
    ----------
    verbose : bool
        Log at INFO level instead of WARNING.
    """
    level = logging.INFO if verbose else logging.WARNING
    # the handler's own level too: records of libraries' loggers (Prefect's) propagate to it regardless of the root level
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False, level=level)])


def print_error(message: str) -> None:
    """Print `message` as one ``error:`` line (not wrapped, so it stays one line for the log or a grep).

    Parameters
    ----------
    message : str
        What went wrong, for a microscopist.
    """
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `message` as one error line and end the command with exit status `code` (2: bad input, before any work).

    Parameters
    ----------
    message : str
        What went wrong, for a microscopist.
    code : int
        The exit status.
    """
    print_error(message)
    raise typer.Exit(code)


def selected_acquisition(config: ProcessingConfig) -> tuple[Acquisition, list[tuple[int, int]]]:
    """The acquisition and the (specimen, timepoint) pairs the config selects, before any work starts.

    Parameters
    ----------
    config : ProcessingConfig
        Names the acquisition and the timepoints to process.

    Returns
    -------
    tuple of (Acquisition, list of (int, int))
        The discovered acquisition and its selected (specimen, timepoint) pairs; a one-line error (exit 2)
        instead when the folder is no acquisition or the selection is empty.
    """
    from isoview_core.acquisition import discover_acquisition
    from isoview_core.pipeline.correction import selected_timepoints

    try:
        found = discover_acquisition(config.acquisition, config.layout)
    except IsoviewError as error:
        fail(str(error).splitlines()[0])
    selection = list(selected_timepoints(config, found))
    if not selection:
        fail(f"{config.acquisition}: no timepoint matches the selection {config.timepoints}")
    return found, selection


def progress_bars() -> Progress:
    """Progress bars of the batch commands: description, bar, done/total, time elapsed and remaining."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def resolved_workers(requested: int | None, acquisition: Acquisition, selection: list[tuple[int, int]], stacks_per_worker: float) -> int:
    """The worker count of a library command: `requested`, or what the cores and the memory allow for these stacks."""
    from isoview_core.pipeline.correction import largest_stack_bytes
    from isoview_core.pipeline.parallel import worker_count

    return worker_count(requested, stack_bytes=largest_stack_bytes(acquisition, selection), stacks_per_worker=stacks_per_worker)
