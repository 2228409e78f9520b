"""The processing configuration of a whole acquisition: one model per stage, composed here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from isoview_core.archive import ArchiveConfig
from isoview_core.correction.config import CorrectionConfig
from isoview_core.formats.codecs import CodecConfig
from isoview_core.fusion.config import FusionConfig
from isoview_core.isotropic.settings import IsotropicStageConfig
from isoview_core.layout import default_corrected_root, default_fused_root, default_isotropic_root
from isoview_core.quality.config import AlertConfig
from isoview_core.temporal.config import TemporalConfig


class OutputConfig(BaseModel):
    """How corrected volumes are stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["zarr", "klb", "tif"] = Field("zarr", description="OME-Zarr (default), KLB (bzip2, legacy) or OME-TIFF.")
    codec: CodecConfig = Field(default_factory=CodecConfig, description="OME-Zarr codec, level, chunk and shard shapes.")
    pyramid_levels: int = Field(
        0, ge=0, le=8, description="Extra 2x-downsampled (y, x) levels in OME-Zarr, for viewers (each level costs ~15 % throughput)."
    )
    corrected_series: bool = Field(
        False,
        description=(
            "Also keep a live (t, z, y, x) time series of each corrected camera, <corrected>/SPM00_CM00_CHN00.ome.zarr "
            "(OME-Zarr output; it links the volumes' files, no second copy). The fused views always get one."
        ),
    )
    # a process-wide setting: the command line applies it with isoview_core.formats.atomic.set_fsync
    fsync: bool = Field(
        True,
        description="fsync every output before publishing it: a power cut never leaves a published output incomplete. Off (--no-fsync) for scratch runs only.",
    )


class ProcessingConfig(BaseModel):
    """Everything needed to process an acquisition; defaults follow ALGORITHMS.md §7."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    acquisition: Path = Field(..., description="Raw acquisition root (nested SPM##/TM##### or flat layout).")
    layout: Literal["auto", "nested", "flat"] = "auto"
    corrected_dir: Path | None = Field(None, description="Correction output root; default <acquisition>.corrected beside it.")
    fused_dir: Path | None = Field(None, description="Fusion output root; default <acquisition>.fused beside it.")
    isotropic_dir: Path | None = Field(None, description="Isotropic volumes' root; default <acquisition>.isotropic beside it.")
    timepoints: list[int] | None = Field(None, description="Timepoints to process; None = all found.")
    specimens: list[int] | None = Field(None, description="Specimens to process; None = all found.")
    camera_pairs: list[tuple[int, int]] = Field([(0, 1), (2, 3)], description="Opposing camera pairs; first = reference.")
    correction: CorrectionConfig = Field(default_factory=CorrectionConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    temporal: TemporalConfig = Field(default_factory=TemporalConfig)
    isotropic: IsotropicStageConfig = Field(
        default_factory=IsotropicStageConfig, description="The isotropic volume of the two orthogonal views (off in the service by default)."
    )
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig, description="Opt-in lossless, verified archive of the raw stacks.")
    alerts: AlertConfig = Field(
        default_factory=AlertConfig, description="Quality alerts the service (isoview watch) raises on each new timepoint: parameter jumps, dark and missing cameras."
    )
    save_diagnostics: bool = Field(True, description="Write the fusion diagnostic PNGs.")
    overwrite: bool = Field(False, description="Recompute outputs that already exist.")

    def resolved_corrected_dir(self) -> Path:
        """The correction output root (a sibling ``<acquisition>.corrected`` folder by default)."""
        return Path(self.corrected_dir) if self.corrected_dir else default_corrected_root(self.acquisition)

    def resolved_fused_dir(self) -> Path:
        """The fusion output root (a sibling ``<acquisition>.fused`` folder by default)."""
        return Path(self.fused_dir) if self.fused_dir else default_fused_root(self.acquisition)

    def resolved_isotropic_dir(self) -> Path:
        """The isotropic volumes' root (a sibling ``<acquisition>.isotropic`` folder by default)."""
        return Path(self.isotropic_dir) if self.isotropic_dir else default_isotropic_root(self.acquisition)

    def last_cameras(self) -> set[int]:
        """Second ("moving") camera of each pair: the ones the optional correction flip applies to."""
        return {pair[1] for pair in self.camera_pairs}
