"""Matrix products that give the same bits on every machine and in every process.

OpenBLAS sums a product in an order that follows its thread count on some CPUs (its AVX2 kernels): the isotropic
resampling through ``np.matmul`` gave volumes a few units apart in a watcher's worker (one BLAS thread) and in a
notebook (all cores). Here each output row is accumulated over the shared axis in index order, in float32, with a
vectorised loop over the row; it depends on nothing but its inputs. Written here, not taken from a library, for
that reason; on the isotropic blocks (64^3 voxels, operators of ~70 samples) it costs about what one-thread sgemm did.
"""

from __future__ import annotations

import numpy as np

from isoview_core.numerics.compiled import compiled

__all__ = ["ordered_matmul"]


@compiled
def _accumulate_rows(left: np.ndarray, right: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = Σ_k left[i, k] right[k]`` for C-ordered float32 (I, K), (K, N) and (I, N), k in order."""
    total = np.empty(right.shape[1], dtype=np.float32)  # private: LLVM vectorises what cannot alias
    for i in range(left.shape[0]):
        total[:] = 0.0
        for k in range(left.shape[1]):
            weight = left[i, k]
            row = right[k]
            for n in range(total.size):
                total[n] += weight * row[n]
        out[i] = total


def ordered_matmul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right`` of float32 matrices, each output row summed over the shared axis in index order.

    Parameters
    ----------
    left : ndarray
        (I, K) matrix.
    right : ndarray
        (K, N) matrix.

    Returns
    -------
    ndarray
        (I, N) float32 product, the same bits whatever the machine's BLAS and its threads.
    """
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[0]:
        raise ValueError(f"cannot multiply {left.shape} by {right.shape}")
    left = np.ascontiguousarray(left, dtype=np.float32)
    right = np.ascontiguousarray(right, dtype=np.float32)
    out = np.empty((left.shape[0], right.shape[1]), dtype=np.float32)
    _accumulate_rows(left, right, out)
    return out
