"""Row slabs of the original pipeline: bounded working memory, same result as the whole stack."""

from __future__ import annotations

from collections.abc import Iterator

from isoview_core.numerics.rounding import round_half_away


def row_slabs(rows: int, splitting: int, *, margin: int) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
    """The original's row slabs: ``((start, stop), (lo, hi))`` of each nominal slab and its filtered extent.

    Nominal slab i is ``[round(i H / N), round((i + 1) H / N))`` (MATLAB rounding); it is filtered
    with ``margin`` extra rows on both sides (clipped), so that filtering slab by slab equals
    filtering the whole stack as long as the kernel's half-width is below the margin.
    """
    for index in range(splitting):
        start = int(round_half_away(index * rows / splitting))
        stop = int(round_half_away((index + 1) * rows / splitting))
        if stop > start:
            yield (start, stop), (max(0, start - margin), min(rows, stop + margin))
