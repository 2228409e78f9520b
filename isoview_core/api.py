"""The Python API for notebooks: configure, correct, fuse, blend, make the isotropic volumes.

>>> from isoview_core.api import ProcessingConfig, process_dataset, fuse
>>> config = ProcessingConfig(acquisition="/data/larva")   # doctest: +SKIP
>>> process_dataset(config)                                # correction of every timepoint  # doctest: +SKIP
>>> fuse(config, estimate_params=True, apply_fusion=True)  # doctest: +SKIP
>>> make_isotropic(config, specimen=0)                     # VW90 registered onto VW00, fused  # doctest: +SKIP
"""

from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.correction.config import CorrectionConfig
from isoview_core.fusion.blending import blend as blend_views
from isoview_core.fusion.config import FusionConfig
from isoview_core.isotropic.settings import IsotropicStageConfig
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.pipeline.isotropic import make_isotropic
from isoview_core.results.array import IsoviewArray
from isoview_core.temporal.config import TemporalConfig

__all__ = [
    "CorrectionConfig",
    "FusionConfig",
    "IsotropicStageConfig",
    "IsoviewArray",
    "OutputConfig",
    "ProcessingConfig",
    "TemporalConfig",
    "blend_views",
    "fuse",
    "make_isotropic",
    "process_dataset",
]
