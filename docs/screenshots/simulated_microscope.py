"""A simulated IsoView writing an acquisition in real time, for the screenshots: NAME TIMEPOINTS INTERVAL_S.

The acquisition called ``larva`` gets an offset jump of 4 px on cameras 0/1 at timepoint 5 (one quality alert).
"""

import sys
from pathlib import Path
from isoview_core.synthetic import SimulationConfig, simulate_acquisition
from isoview_core.synthetic.config import OffsetJump
name, timepoints, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
jumps = (OffsetJump(timepoint=5, pair=0, offset_x_px=4.0, offset_y_px=0.0),) if name == "larva" else ()
simulate_acquisition(Path(name), SimulationConfig(shape=(32, 384, 384), timepoints=timepoints, seed=1, offset_jumps=jumps), interval_s=interval)
