"""Screenshot of ``isoview view``: the fused time series of an acquisition in napari, at its last timepoint and middle plane.

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots/napari_view.py ACQ.fused docs/images/napari-fused.png
"""

from __future__ import annotations

import sys

import napari


def main() -> None:
    root, output = sys.argv[1], sys.argv[2]
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    viewer.open(root, plugin="isoview")
    time_steps, planes = viewer.dims.nsteps[0], viewer.dims.nsteps[1]
    viewer.dims.current_step = (time_steps - 1, planes // 2, *viewer.dims.current_step[2:])
    viewer.reset_view()
    napari.qt.get_qapp().processEvents()
    viewer.screenshot(output, canvas_only=False)
    print(output, [layer.name for layer in viewer.layers], "time steps", time_steps)
    viewer.close()


if __name__ == "__main__":
    main()
