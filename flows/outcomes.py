"""Collecting task outcomes: wait for every future, keep going past failures, report them in one line each."""

from __future__ import annotations

from prefect.futures import PrefectFuture
from prefect.states import State


def settled_states(futures: list[PrefectFuture]) -> list[State]:
    """The final state of every future, in order, after all of them finished (failed ones included)."""
    for future in futures:
        future.wait()
    return [future.state for future in futures]


def failure_message(state: State) -> str:
    """The first line of the exception a failed task raised (its message names the file and the problem)."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - any task exception: its text is the report
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return state.message or state.name or "failed"
