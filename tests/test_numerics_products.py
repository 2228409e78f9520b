"""``ordered_matmul``: the product, summed in index order in float32 (no BLAS, no fused multiply-add)."""

from __future__ import annotations

import numpy as np
import pytest

from isoview_core.numerics.products import ordered_matmul


def _in_order(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The reference: float32 products added to float32 totals, k = 0, 1, ... (numpy, one elementwise step each)."""
    total = np.zeros((left.shape[0], right.shape[1]), np.float32)
    for k in range(left.shape[1]):
        total += left[:, k : k + 1] * right[k]
    return total


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 70, 64), (130, 33, 9)])
def test_every_bit_is_that_of_the_sum_in_index_order(shape):
    rng = np.random.default_rng(sum(shape))
    rows, inner, cols = shape
    left, right = rng.normal(size=(rows, inner)).astype(np.float32), rng.normal(size=(inner, cols)).astype(np.float32)
    product = ordered_matmul(left, right)
    np.testing.assert_array_equal(product, _in_order(left, right))
    np.testing.assert_allclose(product, left.astype(np.float64) @ right.astype(np.float64), rtol=1e-4, atol=1e-4)


def test_strided_and_float64_operands_are_taken_as_float32_copies():
    rng = np.random.default_rng(1)
    left, right = rng.normal(size=(5, 12)), rng.normal(size=(8, 24)).astype(np.float32)[:, ::2].T
    np.testing.assert_array_equal(ordered_matmul(left, right), _in_order(left.astype(np.float32), np.ascontiguousarray(right)))


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r"cannot multiply \(2, 3\) by \(4, 5\)"):
        ordered_matmul(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
