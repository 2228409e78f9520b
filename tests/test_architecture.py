"""The floor plan as import-linter contracts (``[tool.importlinter]`` in pyproject.toml): kept by the code,
broken by an import that points the wrong way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("isoview_core", "tasks", "flows", "isoview_napari")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the packages under ``root``, in a process of its own (it reconfigures logging)."""
    program = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True))"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", program], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_code_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _lint_copy_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """Lint a copy of the packages in which ``module`` (a path under the root) also holds ``line``."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}\n")
    return _lint(tmp_path)


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("isoview_core/numerics/rounding.py", "import typer", "The core is a library"),
        ("isoview_core/formats/atomic.py", "import yaml", "The core is a library"),
        ("isoview_core/pipeline/pair.py", "import prefect", "The core is a library"),
        ("isoview_core/fusion/blending.py", "from isoview_core.correction import config", "The stages never import each other"),
        ("isoview_core/temporal/rloess.py", "import isoview_core.fusion.config", "The stages never import each other"),
        ("isoview_core/numerics/rounding.py", "import isoview_core.layout", "Core floors"),
        ("tasks/caching.py", "import flows.inputs", "flows above tasks above the core"),
        ("isoview_core/numerics/rounding.py", "import napari", "The core is a library"),
        ("isoview_core/results/series.py", "import isoview_napari.reader", "The core is a library"),
        ("isoview_napari/live.py", "import flows.cli", "flows above tasks above the core"),
        ("isoview_core/results/array.py", "import isoview_core.fusion.records", "The stages never import each other"),
    ],
)
def test_an_import_pointing_the_wrong_way_breaks_its_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    result = _lint_copy_with(tmp_path, module, line)
    assert result.returncode == 1, result.stdout + result.stderr
    broken_lines = [text for text in result.stdout.splitlines() if text.endswith("BROKEN")]
    assert any(text.startswith(broken) for text in broken_lines), result.stdout
