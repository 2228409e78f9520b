"""Flows run elsewhere than the test's process (a Dask cluster, a Prefect worker), checked against an in-process run:
processes of their own with a clean environment, and a byte-for-byte comparison of the outputs of two runs."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from golden_outputs import fingerprint

from isoview_core.config import ProcessingConfig
from isoview_core.layout import ESTIMATE_SUFFIX, FUSION_RECORD_SUFFIX, output_files


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any Prefect or isoview setting, plus `variables`."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith(("PREFECT_", "ISOVIEW_"))}
    return kept | {"PYTHONDONTWRITEBYTECODE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"} | variables


def stop(process: subprocess.Popen) -> None:
    """End `process` and everything it started (its own process group): SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_config(acquisition: Path, run: Path) -> ProcessingConfig:
    """The config of one run of the small acquisition: its outputs under ``<run>/out``, no diagnostics."""
    return ProcessingConfig(acquisition=acquisition, corrected_dir=run / "out" / "corrected", fused_dir=run / "out" / "fused", save_diagnostics=False)


def assert_same_outputs(expected: ProcessingConfig, found: ProcessingConfig, where: str) -> None:
    """Both runs wrote every corrected and fused output of the small acquisition, and the same ones, byte for byte.

    Every array of every corrected and fused OME-Zarr and every record's values are compared (timings, paths
    aside: :func:`golden_outputs.fingerprint`); `where` names the run of `found` in the failure message.
    """
    for run in (expected, found):
        assert len(output_files(run.resolved_corrected_dir())) == 8 and len(output_files(run.resolved_fused_dir())) == 4
        assert len(output_files(run.resolved_fused_dir(), ESTIMATE_SUFFIX)) == len(output_files(run.resolved_fused_dir(), FUSION_RECORD_SUFFIX)) == 4
    for stage, expected_root, found_root in (
        ("corrected", expected.resolved_corrected_dir(), found.resolved_corrected_dir()),
        ("fused", expected.resolved_fused_dir(), found.resolved_fused_dir()),
    ):
        expected_prints, found_prints = fingerprint(expected_root), fingerprint(found_root)
        assert sorted(found_prints) == sorted(expected_prints)
        differing = [path for path in expected_prints if found_prints[path] != expected_prints[path]]
        assert not differing, f"{stage} outputs differ between {where} and the in-process run: {differing}"
