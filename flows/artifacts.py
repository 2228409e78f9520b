"""What a person sees in the Prefect UI for each flow run: tables, parameter comparisons, links, progress."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from isoview_core.fusion.records import FusionRecord
from isoview_core.isotropic import rotation_angle_deg
from isoview_core.isotropic.records import IsotropicRecord
from isoview_core.layout import FusedPaths, PairId, parameters_over_time_figures
from isoview_core.records import PARAMETER_NAMES, CorrectedStackRecord
from isoview_core.service.progress import StepCounts


SHOWN_FIGURE = "fusion_result"
"""The figure of each pair's latest timepoint that the diagnostics artifact shows (the others are linked)."""
THUMBNAIL_WIDTH = 900
"""Width in pixels of the pictures shown in the artifact."""


def artifact_key(*parts: str | int) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) from its parts."""
    return "-".join(str(part) for part in parts).lower().replace("_", "-")


def publish_correction_table(specimen: int, timepoint: int, records: list[CorrectedStackRecord], errors: list[str]) -> None:
    """One row per camera stack: shape, sizes, compression, defects, background, foreground, timings."""
    rows = [
        {
            "camera": record.camera,
            "channel": record.channel,
            "shape (z, y, x)": "x".join(str(n) for n in record.shape),
            "raw MB": round(record.raw_bytes / 1e6, 1),
            "stored MB": round(record.stored_bytes / 1e6, 1),
            "compression": round(record.compression_ratio, 2),
            "dead pixels": record.defective_pixels,
            "background": f"{record.background_value:.1f} ({record.background_source})",
            "foreground %": round(100 * record.foreground_fraction, 1),
            "time s": round(record.timings_s.get("total", float("nan")), 2),
        }
        for record in records
    ]
    rows += [{"camera": "error", "channel": "", "shape (z, y, x)": error} for error in errors]
    create_table_artifact(
        rows,
        key=artifact_key("correction", f"spm{specimen:02d}", f"tm{timepoint:06d}"),
        description=f"Correction of SPM{specimen:02d} TM{timepoint:06d}",
    )


def publish_fusion_parameters(specimen: int, records: list[FusionRecord]) -> None:
    """Estimated vs applied parameters of each fused pair."""
    if not records:
        return
    rows = []
    for record in sorted(records, key=lambda r: (r.timepoint, r.cameras)):
        row: dict[str, object] = {"timepoint": record.timepoint, "cameras": f"{record.cameras[0]}+{record.cameras[1]}", "window": f"{record.window[0]}..{record.window[1]}"}
        for name in PARAMETER_NAMES:
            row[f"{name} estimated"] = round(getattr(record.estimated, name), 4)
            row[f"{name} applied"] = round(getattr(record.applied, name), 4)
        rows.append(row)
    first, last = rows[0]["timepoint"], rows[-1]["timepoint"]
    create_table_artifact(
        rows,
        key=artifact_key("fusion-parameters", f"spm{specimen:02d}"),
        description=f"Fusion parameters of SPM{specimen:02d} TM{first:06d}..TM{last:06d}: estimated vs applied (smoothed)",
    )


def publish_fusion_figures(specimen: int, pairs: list[PairId], fused_root: Path) -> None:
    """Links to the diagnostic figures of each fused pair, and the latest pair's fusion result and the parameters
    over time shown inline (published once the figures are drawn)."""
    if not pairs:
        return
    pairs = sorted(pairs, key=lambda p: (p.timepoint, p.cameras))
    lines = [f"# Fusion diagnostics, SPM{specimen:02d} TM{pairs[0].timepoint:06d}..TM{pairs[-1].timepoint:06d}", ""]
    fused_root = fused_root.resolve()  # links are file URIs, which need absolute paths
    over_time = parameters_over_time_figures(fused_root)
    for path in over_time:
        lines.append(f"- parameters over time: [{path.name}]({path.as_uri()})")
    latest: dict[tuple[int, int], PairId] = {}
    for pair in pairs:
        figures = ", ".join(f"[{png.stem}]({png.as_uri()})" for png in FusedPaths(fused_root, pair).figures())
        lines.append(f"- TM{pair.timepoint:06d} cameras {pair.cameras[0]}+{pair.cameras[1]}: {figures or 'no figures'}")
        latest[pair.cameras] = pair  # sorted by timepoint: the last one seen is the latest
    # the pictures themselves, small: a browser does not follow file links from a web page
    for pair in sorted(latest.values(), key=lambda p: p.cameras):
        result = FusedPaths(fused_root, pair).figure(SHOWN_FIGURE)
        if result.is_file():
            lines += ["", f"## TM{pair.timepoint:06d} cameras {pair.cameras[0]}+{pair.cameras[1]}: {SHOWN_FIGURE}", "", _embedded(result)]
    for path in over_time:
        lines += ["", f"## {path.stem.replace('_', ' ')}", "", _embedded(path)]
    create_markdown_artifact("\n".join(lines), key=artifact_key("fusion-diagnostics", f"spm{specimen:02d}"), description="The diagnostic PNGs: latest pictures and links")


def publish_isotropic_transforms(specimen: int, records: list[IsotropicRecord]) -> None:
    """Per isotropic volume: the registration's quality, and the applied transform's angle and shift next to the estimate's."""
    if not records:
        return
    rows = []
    for record in sorted(records, key=lambda r: (r.timepoint, r.channels)):
        applied = record.applied_matrix()
        row: dict[str, object] = {
            "timepoint": record.timepoint,
            "channels": f"{record.channels[0]}+{record.channels[1]}",
            "window": f"{record.window[0]}..{record.window[1]}",
            "source": record.source,
            "NCC": None if record.quality is None else round(record.quality, 3),
            "applied shift (z, y, x) um": ", ".join(f"{v:.2f}" for v in applied[:3, 3]),
        }
        if record.estimated is not None:
            estimated = np.array(record.estimated)
            row["estimate - applied, degrees"] = round(rotation_angle_deg(estimated[:3, :3].T @ applied[:3, :3]), 4)
            row["estimate - applied, um"] = round(float(np.linalg.norm(estimated[:3, 3] - applied[:3, 3])), 3)
        rows.append(row)
    create_table_artifact(
        rows,
        key=artifact_key("isotropic-transforms", f"spm{specimen:02d}"),
        description=f"Isotropic volumes of SPM{specimen:02d}: VW90 -> VW00 registration estimated vs applied (smoothed)",
    )


def _embedded(png: Path, width: int = THUMBNAIL_WIDTH) -> str:
    """Markdown image of a PNG scaled to `width` pixels, as an inline JPEG (the UI shows it; ~50-100 kB)."""
    with Image.open(png) as image:
        image = image.convert("RGB")
        image.thumbnail((width, width * 4))
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=80)
    return f"![{png.stem}](data:image/jpeg;base64,{base64.b64encode(encoded.getvalue()).decode('ascii')})"


class RunProgressArtifact:
    """The progress bar of a run in the UI: the share of its steps that succeeded, and in its description how many
    succeeded and failed (a run with failures ends below 100 %).

    Parameters
    ----------
    what : str
        What the run works on, the start of the description: ``/data/larva: 12 timepoints``.
    steps : int
        Steps the run has.
    """

    def __init__(self, what: str, steps: int) -> None:
        self.what = what
        self.counts = StepCounts(total=steps)
        self.artifact_id = create_progress_artifact(0.0, description=self._description())

    def record(self, succeeded: bool) -> None:
        """Count one finished step and update the bar."""
        self.counts.record(succeeded)
        update_progress_artifact(self.artifact_id, self.counts.percent, description=self._description())

    def _description(self) -> str:
        return f"{self.what}; {self.counts.describe()}"
