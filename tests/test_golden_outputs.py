"""Byte-identical behaviour: every output of correction and fusion, in eight variants, equals the fingerprints
written before the floor-plan renovation (``tests/golden_outputs.py``).

Volumes must match to the byte. The floating-point numbers of the records (registration offsets, correlations)
may differ in their last bits from one CPU to another: numpy and OpenBLAS reduce along SIMD paths chosen by the
CPU (AVX-512 or AVX2), so those compare to 1e-9 relative, far below any change of method."""

from __future__ import annotations

import json
import math

import pytest
from golden_outputs import GOLDEN, VARIANTS, fingerprint_variants


@pytest.fixture(scope="module")
def fingerprints(tmp_path_factory):
    """Every variant run once on the small simulated acquisition, fingerprinted."""
    return fingerprint_variants(tmp_path_factory.mktemp("golden"))


def _flat(stages: dict) -> dict:
    """``{"corrected/<path>": fingerprint, "fused/<path>": fingerprint}`` of one variant."""
    return {f"{stage}/{path}": value for stage, outputs in stages.items() for path, value in outputs.items()}


RELATIVE_TOLERANCE = 1e-9


def _same(produced, golden) -> bool:
    """Equal JSON values; floats within ``RELATIVE_TOLERANCE`` (NaN equals NaN)."""
    if isinstance(golden, float) and isinstance(produced, (int, float)):
        return math.isclose(produced, golden, rel_tol=RELATIVE_TOLERANCE) or (math.isnan(produced) and math.isnan(golden))
    if isinstance(golden, dict) and isinstance(produced, dict):
        return produced.keys() == golden.keys() and all(_same(produced[key], golden[key]) for key in golden)
    if isinstance(golden, list) and isinstance(produced, list):
        return len(produced) == len(golden) and all(_same(a, b) for a, b in zip(produced, golden))
    return type(produced) is type(golden) and produced == golden


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_output_equals_its_fingerprint_from_before_the_renovation(fingerprints, variant):
    golden = _flat(json.loads(GOLDEN.read_text())["variants"][variant])
    produced = _flat(fingerprints[variant])
    assert sorted(produced) == sorted(golden), "outputs written differ from the golden run's"
    different = [path for path in golden if not _same(produced[path], golden[path])]
    assert not different, f"{len(different)} output(s) differ, first {different[0]}: {produced[different[0]]} != {golden[different[0]]}"
