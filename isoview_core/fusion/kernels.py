"""Compiled per-plane loops of the fusion: the separable cubic translation and the adaptive blend.

Why compiled. Applying the registration (a pure translation, θ = 0) and blending the two cameras
were a dozen numpy passes per plane over whole-plane or block temporaries: the column pass
(``scipy.ndimage.correlate1d``), the row pass, rounding and saturation, two table lookups for the
intensity correction, then the masks, copies and scattered groups of the blend. Each loop here
reads its inputs once and writes every output voxel once, with a few rows of scratch. Per
2048 x 2048 uint16 plane of the e2e acquisition (``fuse_slab`` on one slab, one core): translation
of the flipped second camera 33 ms -> 7 ms (43 -> 5 ms on a C-ordered plane); intensity correction
of both cameras and blend 13.5 ms -> 9.6 ms. The blend's loops are written as selects rather than
branches and ``min``/``max`` calls, and with int32 plane indices: so LLVM vectorises them (one plane
with an intensity factor, this VM: 23 -> 15 ms; without: 21 -> 10 ms).

Both loops do the arithmetic of the numpy code they replace in the same order, so their results
are identical to the last bit: the column pass sums its four taps in ``correlate1d``'s order, the
row pass in tap order, integers are rounded half away from zero and saturated, and blended voxels
are computed in float32 from the same weights. Loops run over 1-D row slices indexed from 0, which
numba vectorises (no negative-index wrap-around).
"""

from __future__ import annotations

import numpy as np

from isoview_core.numerics.compiled import compiled

__all__ = ["blend_plane", "translate_plane"]

STORE_FLOAT, STORE_UNSIGNED, STORE_SIGNED = 0, 1, 2
"""How :func:`translate_plane` converts a float64 value into the output dtype."""

EMPTY_ZERO, EMPTY_REFERENCE, EMPTY_MAX = 0, 1, 2
"""What :func:`blend_plane` writes where the transition map is 0."""

ZONE_BLEND, ZONE_FRONT, ZONE_BACK = 0, 1, 2
"""A plane that :func:`blend_plane` blends, or one where every mapped pixel's front weight is exactly 1 (0)."""


@compiled
def translate_plane(
    source: np.ndarray,
    out: np.ndarray,
    first_row: int,
    row_weights: np.ndarray,
    first_col: int,
    col_weights: np.ndarray,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    store: int,
    low: float,
    high: float,
) -> None:
    """Separable Keys cubic translation of one plane into ``out[r0:r1, c0:c1]``, columns first, then rows.

    Output pixel ``(r, c)`` is ``Σ_i Σ_j row_weights[i] col_weights[j] source[r + first_row + i,
    c + first_col + j]`` with sample indices clamped to the frame; an axis with a single weight
    (an integer shift) is a plain copy along it.

    Parameters
    ----------
    source : ndarray
        (Y, X) plane, any real dtype and strides (a flipped view is read in place).
    out : ndarray
        (Y, X) destination; only the rectangle ``[r0, r1) x [c0, c1)`` is written.
    first_row, first_col : int
        Source row (column) of the first weight for output row (column) 0.
    row_weights, col_weights : ndarray
        Four Keys weights (``keys_cubic_weights``), or ``[1.0]`` along an axis shifted by an integer.
    r0, r1, c0, c1 : int
        Output rectangle.
    store : int
        ``STORE_FLOAT``: cast; ``STORE_UNSIGNED``: saturate to ``[0, high]``, then round half up by
        truncating ``v + 0.5``; ``STORE_SIGNED``: round half away from zero, saturate to
        ``[low, high]``.
    low, high : float
        The integer dtype's range.
    """
    height, width = source.shape
    count = c1 - c0
    row_taps, col_taps = row_weights.size, col_weights.size
    span = count + col_taps - 1  # source columns the column pass reads per row
    start = c0 + first_col  # source column of samples[0]
    inside_from, inside_to = min(span, max(0, -start)), max(0, min(span, width - start))
    samples = np.empty(span)
    before, inside, after = samples[:inside_from], samples[inside_from:inside_to], samples[inside_to:]
    taps = [samples[tap : tap + count] for tap in range(col_taps)]
    w0 = col_weights[0]
    w1, w2, w3 = (col_weights[1], col_weights[2], col_weights[3]) if col_taps == 4 else (0.0, 0.0, 0.0)
    filtered = np.empty((4, count))  # column-filtered source rows, in slot (row % 4)
    cached = np.full(4, -1)
    values = np.empty(count)
    for r in range(r0, r1):
        top = r + first_row
        for tap in range(row_taps):
            row = min(max(top + tap, 0), height - 1)
            slot = row % 4
            if cached[slot] == row:
                continue
            cached[slot] = row
            line = source[row]
            before[:] = line[0]
            after[:] = line[width - 1]
            segment = line[start + inside_from : start + inside_to]
            for j in range(inside.size):
                inside[j] = segment[j]
            columns = filtered[slot]
            if col_taps == 1:
                columns[:] = samples
            else:  # correlate1d's order: last tap first, then the others in order
                s0, s1, s2, s3 = taps[0], taps[1], taps[2], taps[3]
                for j in range(count):
                    columns[j] = ((w3 * s3[j] + w0 * s0[j]) + w1 * s1[j]) + w2 * s2[j]
        if row_taps == 1:
            values[:] = filtered[min(max(top, 0), height - 1) % 4]
        else:
            a = filtered[min(max(top, 0), height - 1) % 4]
            b = filtered[min(max(top + 1, 0), height - 1) % 4]
            c = filtered[min(max(top + 2, 0), height - 1) % 4]
            d = filtered[min(max(top + 3, 0), height - 1) % 4]
            v0, v1, v2, v3 = row_weights[0], row_weights[1], row_weights[2], row_weights[3]
            for j in range(count):
                values[j] = ((a[j] * v0 + b[j] * v1) + c[j] * v2) + d[j] * v3
        target = out[r, c0:c1]
        if store == STORE_UNSIGNED:
            for j in range(count):
                target[j] = min(max(values[j], 0.0), high) + 0.5
        elif store == STORE_SIGNED:
            for j in range(count):
                value = values[j]
                target[j] = min(max(np.sign(value) * np.floor(np.abs(value) + 0.5), low), high)
        else:
            for j in range(count):
                target[j] = values[j]


@compiled
def blend_plane(
    reference: np.ndarray,
    second: np.ndarray,
    transition: np.ndarray,
    plane: int,
    blending_range: int,
    step: np.float32,
    at_transition: np.float32,
    front_is_reference: bool,
    zone: int,
    empty_fill: int,
    shifts: np.ndarray,
    factors: np.ndarray,
    corrected_reference: np.ndarray,
    corrected_second: np.ndarray,
    out: np.ndarray,
) -> None:
    """Intensity correction of both cameras and adaptive blend of one uint16 plane.

    Parameters
    ----------
    reference, second : ndarray
        (Y, X) uint16 planes of camera 1 and the registered camera 2.
    transition : ndarray
        (Y, X) 1-based transition planes ``m``, 0 = excluded.
    plane : int
        Absolute 0-based index ``k`` of the plane.
    blending_range : int
        ``B``.
    step, at_transition : float32
        Front weight ``min(1, 1 - step (k - m + B))`` for ``k < m``, ``max(0, at_transition - step
        (k - m))`` for ``k >= m``: ``0.5 / (B - 1)`` and 0.5, or 0 and 0 for a hard cut (``B = 1``).
        Beyond the blend zone the weight is exactly 1 or 0, so the blend is the front or back value.
    front_is_reference : bool
        Camera 1 is the front view.
    zone : int
        ``ZONE_BLEND``, or ``ZONE_FRONT`` / ``ZONE_BACK`` when the weights of every mapped pixel of the plane are
        exactly 1 / 0 (beyond the blend zone, :func:`~isoview_core.fusion.blending.blend_zones`): the fused value
        is then the front / back value itself, as the blend computes it, without the weights. Most planes of a
        stack are: the 64 planes of a pair of 2048 x 2048 cameras of ``benchmarks/bench_end_to_end.py`` (56 beyond
        the zone), corrected and fused, took 0.58 instead of 0.69 s.
    empty_fill : int
        ``EMPTY_ZERO``, ``EMPTY_REFERENCE`` or ``EMPTY_MAX``: the value where ``m == 0``.
    shifts, factors : ndarray
        Per camera, the correction ``v -> to_u16(to_u16(v + shift) * factor)``: ``shift =
        ⌊0.5 - background⌋`` (an integer, so the subtraction is exact), then the float64 product,
        rounded half up and saturated, as :func:`~isoview_core.fusion.intensity.apply_intensity_correction`.
    corrected_reference, corrected_second : ndarray
        (Y, X) uint16, receive the corrected planes (may be ``reference`` and ``second``), or
        (0, 0) arrays to keep them only in scratch rows.
    out : ndarray
        (Y, X) uint16 fused plane; may be any of the inputs.
    """
    rows, cols = reference.shape
    keep = corrected_reference.size > 0
    scratch = np.empty((2, cols), np.uint16)
    one, half, zero, top = np.float32(1.0), np.float32(0.5), np.float32(0.0), np.float32(65535.0)
    mask_reference = np.uint16(65535 if empty_fill != EMPTY_ZERO else 0)  # empty value max(a & mask_a, b & mask_b)
    mask_second = np.uint16(65535 if empty_fill == EMPTY_MAX else 0)
    plane_index, blend_span = np.int32(plane), np.float32(blending_range)  # int64 -> float32 does not vectorise
    for r in range(rows):
        a = corrected_reference[r] if keep else scratch[0]
        b = corrected_second[r] if keep else scratch[1]
        for camera in range(2):
            source = reference[r] if camera == 0 else second[r]
            target = a if camera == 0 else b
            shift, factor = np.int32(shifts[camera]), factors[camera]
            for c in range(cols):  # selects, not min/max calls, as below
                value = np.int32(source[c]) + shift
                value = value if value > 0 else np.int32(0)
                target[c] = value if value < 65535 else np.int32(65535)
            if factor != 1.0:
                for c in range(cols):
                    scaled = np.float64(target[c]) * factor + 0.5
                    target[c] = np.int32(scaled if scaled < 65535.0 else 65535.0)
        front, back = (a, b) if front_is_reference else (b, a)
        maps = transition[r]
        fused = out[r]
        if zone != ZONE_BLEND:
            chosen = front if zone == ZONE_FRONT else back
            for c in range(cols):
                empty_reference, empty_second = a[c] & mask_reference, b[c] & mask_second
                empty = empty_reference if empty_reference > empty_second else empty_second
                fused[c] = empty if maps[c] == 0 else chosen[c]
            continue
        for c in range(cols):  # selects, not branches or min/max calls: LLVM vectorises it (2x)
            m = np.int32(maps[c])
            offset = np.float32(plane_index - m)  # exact: planes are far below 2**24
            before = one - step * (offset + blend_span)
            before = before if before < one else one
            after = at_transition - step * offset
            after = after if after > zero else zero
            weight = before if offset < zero else after
            value = np.float32(front[c]) * weight + np.float32(back[c]) * (one - weight) + half
            value = value if value < top else top
            empty_reference, empty_second = a[c] & mask_reference, b[c] & mask_second
            empty = empty_reference if empty_reference > empty_second else empty_second
            fused[c] = empty if m == 0 else np.uint16(np.int32(value))
