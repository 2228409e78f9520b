"""The ``isoview`` command's interpreter settings: collector thresholds and one BLAS thread unless the user chose."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from flows.interpreter import GC_THRESHOLDS

PROBE = "import gc, json, os, flows.cli; print(json.dumps([gc.get_threshold(), os.environ.get('OPENBLAS_NUM_THREADS')]))"


def _settings_of_a_fresh_cli(**environment: str) -> tuple[list[int], str | None]:
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"} | environment
    output = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    thresholds, blas_threads = json.loads(output)
    return thresholds, blas_threads


def test_the_cli_raises_the_collector_thresholds_and_runs_blas_on_one_thread():
    thresholds, blas_threads = _settings_of_a_fresh_cli()
    assert thresholds == list(GC_THRESHOLDS)
    assert thresholds[0] > 700  # Python's default collects after every 700 allocations
    assert blas_threads == "1"


def test_a_blas_thread_count_set_by_the_user_wins():
    _, blas_threads = _settings_of_a_fresh_cli(OPENBLAS_NUM_THREADS="3")
    assert blas_threads == "3"


def test_what_is_alive_at_exit_is_frozen_so_the_last_collection_skips_it():
    probe = "import atexit, gc, flows.cli; atexit._run_exitfuncs(); print(gc.get_freeze_count())"
    frozen = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert int(frozen) > 10_000  # the objects the imports created (typer, rich, pydantic, the commands)
