"""Byte-identical behaviour: every output of correction and fusion, in eight variants, equals the fingerprints
written before the floor-plan renovation (``tests/golden_outputs.py``)."""

from __future__ import annotations

import json

import pytest
from golden_outputs import GOLDEN, VARIANTS, fingerprint_variants


@pytest.fixture(scope="module")
def fingerprints(tmp_path_factory):
    """Every variant run once on the small simulated acquisition, fingerprinted."""
    return fingerprint_variants(tmp_path_factory.mktemp("golden"))


def _flat(stages: dict) -> dict:
    """``{"corrected/<path>": fingerprint, "fused/<path>": fingerprint}`` of one variant."""
    return {f"{stage}/{path}": value for stage, outputs in stages.items() for path, value in outputs.items()}


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)  # NaN compares equal to NaN as text


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_output_equals_its_fingerprint_from_before_the_renovation(fingerprints, variant):
    golden = _flat(json.loads(GOLDEN.read_text())["variants"][variant])
    produced = _flat(fingerprints[variant])
    assert sorted(produced) == sorted(golden), "outputs written differ from the golden run's"
    different = [path for path in golden if _canonical(produced[path]) != _canonical(golden[path])]
    assert not different, f"{len(different)} output(s) differ, first {different[0]}: {produced[different[0]]} != {golden[different[0]]}"
