"""Check a raw acquisition before a run: say what is wrong, file by file (``isoview doctor``).

The checks reuse what the processing itself uses (acquisition discovery and what it found in the
folders, channel XMLs, the stack size check of :class:`~isoview_core.formats.stack.StackFile`,
the background reader), so a problem is reported here with the same one-line message the run
would fail with, but for every file at once and before hours of processing. They are cheap:
directory listings, ``stat``, the channel XMLs, the background TIFFs, and a band of rows from a
few planes of each stack.

Modules: :mod:`.diagnose` runs the checks in order; :mod:`.raw` checks the raw acquisition,
:mod:`.outputs` the output locations; :mod:`.report` holds what is reported.
"""

from isoview_core.doctor.diagnose import diagnose_acquisition
from isoview_core.doctor.outputs import FREE_SPACE_MARGIN
from isoview_core.doctor.raw import SAMPLE_PLANES
from isoview_core.doctor.report import (
    TYPICAL_COMPRESSION_RATIO,
    DoctorReport,
    Finding,
    OutputSpace,
    size_text,
)

__all__ = [
    "FREE_SPACE_MARGIN",
    "SAMPLE_PLANES",
    "TYPICAL_COMPRESSION_RATIO",
    "DoctorReport",
    "Finding",
    "OutputSpace",
    "diagnose_acquisition",
    "size_text",
]
