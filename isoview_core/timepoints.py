"""Parsing of timepoint selections such as ``0,1,5-9``."""

from __future__ import annotations


def parse_timepoints(text: str | None) -> list[int] | None:
    """``"0,1,5-9"`` -> ``[0, 1, 5, 6, 7, 8, 9]``; None or empty -> None (all timepoints).

    Raises
    ------
    ValueError
        On anything that is not a comma-separated list of integers and ``a-b`` ranges.
    """
    if text is None or not text.strip():
        return None
    selected: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                first, last = (int(value) for value in part.split("-", 1))
                if last < first:
                    raise ValueError
                selected.update(range(first, last + 1))
            else:
                selected.add(int(part))
        except ValueError:
            raise ValueError(f"invalid timepoint selection {part!r} in {text!r} (expected e.g. 0,1,5-9)") from None
    return sorted(selected)
